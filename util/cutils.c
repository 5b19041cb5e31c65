/*
 * Small helpers on buffers and strings (see include/qemu/cutils.h): the
 * zero-page test every migration sink runs per page, and the size syntax of
 * the command line and of file: URI offsets.
 */
#include "qemu/osdep.h"
#include "qemu/cutils.h"

static inline uint64_t load_u64(const unsigned char *p)
{
    uint64_t v;

    /* memcpy compiles to one unaligned load and keeps UBSan quiet. */
    memcpy(&v, p, sizeof(v));
    return v;
}

bool buffer_is_zero(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    const unsigned char *end = p + len;
    const uint64_t *w;
    const uint64_t *wend;

    if (len < sizeof(uint64_t)) {
        unsigned char acc = 0;

        while (p < end) {
            acc |= *p++;
        }
        return acc == 0;
    }

    /*
     * The first and last 8 bytes (unaligned) cover the ragged edges, so
     * the middle can be scanned in aligned words; data usually fails here.
     */
    if (load_u64(p) | load_u64(end - sizeof(uint64_t))) {
        return false;
    }
    w = (const uint64_t *)QEMU_ALIGN_UP((uintptr_t)p, sizeof(uint64_t));
    wend = (const uint64_t *)QEMU_ALIGN_DOWN((uintptr_t)end, sizeof(uint64_t));

    /* 64 bytes per step: eight independent loads, one test. */
    while (wend - w >= 8) {
        if (w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7]) {
            return false;
        }
        w += 8;
    }
    while (w < wend) {
        if (*w++) {
            return false;
        }
    }
    return true;
}

/* Multiplier of a size suffix, or 0 if c is not one. */
static uint64_t suffix_multiplier(char c)
{
    switch (c) {
    case 'b':
    case 'B':
        return 1;
    case 'k':
    case 'K':
        return KiB;
    case 'm':
    case 'M':
        return MiB;
    case 'g':
    case 'G':
        return GiB;
    case 't':
    case 'T':
        return 1024 * GiB;
    default:
        return 0;
    }
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/*
 * Digits of str in base 10 or 16, at least one; *endp gets the first
 * non-digit. -ERANGE on overflow, -EINVAL when there are no digits.
 */
static int parse_digits(const char *str, unsigned base, uint64_t *value,
                        const char **endp)
{
    const char *p = str;
    uint64_t v = 0;
    int d;

    while ((d = hex_digit(*p)) >= 0 && (unsigned)d < base) {
        if (v > (UINT64_MAX - d) / base) {
            return -ERANGE;
        }
        v = v * base + d;
        p++;
    }
    if (p == str) {
        return -EINVAL;
    }
    *value = v;
    *endp = p;
    return 0;
}

int qemu_strtosz(const char *str, char default_suffix, uint64_t *result)
{
    bool hex;
    const char *p;
    uint64_t value;
    uint64_t mul;
    int ret;

    if (!str) {
        return -EINVAL;
    }
    /* No sign, no whitespace: a digit must come first. */
    if (*str < '0' || *str > '9') {
        return -EINVAL;
    }
    hex = str[0] == '0' && (str[1] == 'x' || str[1] == 'X');
    ret = parse_digits(hex ? str + 2 : str, hex ? 16 : 10, &value, &p);
    if (ret < 0) {
        return ret;
    }

    if (*p) {
        /* Only decimal takes a suffix: "0x20M" is refused. */
        mul = hex ? 0 : suffix_multiplier(*p);
        if (!mul || p[1]) {
            return -EINVAL;
        }
    } else if (default_suffix) {
        /* As in QEMU, a bare hex number takes the default unit too. */
        mul = suffix_multiplier(default_suffix);
        if (!mul) {
            return -EINVAL;
        }
    } else {
        mul = 1;
    }

    if (value > UINT64_MAX / mul) {
        return -ERANGE;
    }
    *result = value * mul;
    return 0;
}

char *size_to_str(uint64_t bytes)
{
    static const char *const units[] = {"B",   "KiB", "MiB", "GiB",
                                        "TiB", "PiB", "EiB"};
    unsigned i = 0;
    uint64_t unit = 1;
    char num[G_ASCII_DTOSTR_BUF_SIZE];
    size_t len;
    double v;

    while (i + 1 < G_N_ELEMENTS(units) && bytes >= unit * 1024) {
        unit *= 1024;
        i++;
    }
    if (bytes % unit == 0) {
        return g_strdup_printf("%" PRIu64 " %s", bytes / unit, units[i]);
    }

    v = (double)bytes / (double)unit;
    /* Locale-independent, so the text never reads "1,5 GiB". */
    g_ascii_formatd(num, sizeof(num), "%.2f", v);
    if (g_str_equal(num, "1024.00") && i + 1 < G_N_ELEMENTS(units)) {
        /* Rounded up into the next unit, e.g. 1 GiB - 1 byte. */
        return g_strdup_printf("1 %s", units[i + 1]);
    }
    /* "1.50" -> "1.5", "2.00" -> "2". */
    len = strlen(num);
    while (num[len - 1] == '0') {
        num[--len] = '\0';
    }
    if (num[len - 1] == '.') {
        num[--len] = '\0';
    }
    return g_strdup_printf("%s %s", num, units[i]);
}
