# Drives ninja in build/ (made by ./configure).
BUILD ?= build
.PHONY: all check bench clean docs
all:
	@test -f $(BUILD)/build.ninja || ./configure --builddir=$(BUILD)
	ninja -C $(BUILD)
check: all
	meson test -C $(BUILD) --print-errorlogs
bench: all
	tests/bench/run.sh
clean:
	rm -rf $(BUILD)
# Regenerates the committed QMP reference from the schema (qapi/*.json).
.PHONY: qapi-doc
qapi-doc:
	python3 scripts/qapi-gen.py --doc docs/interop/qmp-reference.md qapi/qapi-schema.json
