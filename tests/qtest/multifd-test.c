/*
 * multifd end to end (issue 5): guests saved over several channels and
 * loaded in another process, over a mapped-ram file and over unix: and
 * tcp: sockets (with and without compression). Every case checks guest
 * memory: the a-b checker on the destination, and per-block digests equal
 * to the source's when both are stopped. Also: a file written with N
 * channels loads with M (and without multifd) and its RAM part is
 * byte-identical to one written without multifd; zero-page-detection
 * none / legacy / multifd give the same memory; max-bandwidth holds; a
 * channel that breaks (closed, write error, peer killed, damaged packets,
 * cancel while stuck) fails the whole migration cleanly while the source
 * keeps running; the refusal messages. Breakage comes from a small proxy
 * between the two processes (see Proxy).
 */
#include "qemu/osdep.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "migration-helpers.h"

#define AB_ARGS  "-m 128M -workload a-b"
#define RAM_SIZE (128 * MiB)

/* --- helpers --- */

/* An a-b guest that has run a little, migration bandwidth unlimited. */
static QTestState *start_source(void)
{
    return mig_start_source(AB_ARGS);
}

/* -S: the guest stays paused after the load, so it can be compared. */
static QTestState *start_destination(bool paused)
{
    return mig_start_destination(paused ? AB_ARGS " -S" : AB_ARGS);
}

/*
 * x-query-multifd-channels lists n channels and every one carried pages,
 * so the work was spread; HMP's info migrate shows them too (source).
 * Loading a file, the channels' readers take runs from one shared queue,
 * so a channel may get none: only the total must be there (each false).
 */
static void assert_channels_used(QTestState *s, int n, bool source, bool each)
{
    g_autoptr(JsonNode) ret = qtest_qmp_assert_success_ref(
        s, "{'execute': 'x-query-multifd-channels'}");
    JsonArray *arr = json_node_get_array(ret);
    int64_t pages = 0;

    g_assert_cmpuint(json_array_get_length(arr), ==, n);
    for (int i = 0; i < n; i++) {
        JsonObject *c = json_array_get_object_element(arr, i);

        g_assert_cmpint(qtest_json_get_int(c, "id"), ==, i);
        pages += qtest_json_get_int(c, "pages");
        if (each) {
            g_assert_cmpint(qtest_json_get_int(c, "pages"), >, 0);
            g_assert_cmpint(qtest_json_get_int(c, "bytes"), >, 0);
        }
    }
    g_assert_cmpint(pages, >, 0);
    if (source) {
        g_autofree char *hmp = qtest_hmp(s, "info migrate");
        g_autofree char *line = g_strdup_printf("multifd channel %d: ", n - 1);

        g_assert_nonnull(strstr(hmp, line));
        g_assert_nonnull(strstr(hmp, "multifd bytes: "));
    }
}

/* The source's figures of a completed multifd migration. */
static void assert_multifd_figures(QTestState *src, bool zero_pages,
                                   bool compressed)
{
    g_autoptr(JsonNode) hold = NULL;
    JsonObject *ram = migrate_query_ram(src, &hold);
    int64_t normal = qtest_json_get_int(ram, "normal");

    g_assert_cmpint(normal, >, 0);
    if (compressed) {
        g_assert_cmpint(qtest_json_get_int(ram, "multifd-bytes"), >, 0);
    } else {
        g_assert_cmpint(qtest_json_get_int(ram, "multifd-bytes"), >=,
                        normal * 4096);
    }
    g_assert_cmpint(qtest_json_get_int(ram, "transferred"), >=,
                    qtest_json_get_int(ram, "multifd-bytes"));
    g_assert_cmpint(qtest_json_get_int(ram, "pages-per-second"), >, 0);
    if (zero_pages) {
        g_assert_cmpint(qtest_json_get_int(ram, "duplicate"), >, 0);
    } else {
        g_assert_cmpint(qtest_json_get_int(ram, "duplicate"), ==, 0);
    }
}

/*
 * Loads uri into a fresh destination (-S) with multifd set as given and
 * checks it against the stopped source.
 */
static void load_file_and_check(QTestState *src, const char *uri, int channels,
                                bool src_ran)
{
    QTestState *dst = start_destination(true);

    mig_set_multifd(dst, channels, true);
    migrate_incoming_uri(dst, uri);
    migrate_wait_status(dst, "completed", MIG_TIMEOUT);
    mig_assert_runstate(dst, "paused");
    mig_assert_same_ram(src, dst);
    mig_assert_ab_ok(dst, RAM_SIZE);
    if (channels) {
        assert_channels_used(dst, channels, false, false);
    }
    (void)src_ran;
    mig_cont(dst);
    mig_wait_alive(dst);
    qtest_quit(dst);
}

/* --- file: with mapped-ram --- */

/* A stopped guest, 4 channels each way. */
static void test_file_mapped_ram(void)
{
    QTestState *src = start_source();
    g_autofree char *path = mig_tmp_path(src, "mig.img");
    g_autofree char *uri = g_strdup_printf("file:%s", path);

    mig_stop(src);
    mig_set_multifd(src, 4, true);
    migrate_uri(src, uri);
    migrate_wait_status(src, "completed", MIG_TIMEOUT);
    mig_assert_runstate(src, "postmigrate");
    assert_multifd_figures(src, true, false);
    assert_channels_used(src, 4, true, true);
    load_file_and_check(src, uri, 4, false);
    qtest_quit(src);
}

/* A running guest: pages dirtied again are rewritten at their slots. */
static void test_file_mapped_ram_live(void)
{
    QTestState *src = start_source();
    g_autofree char *path = mig_tmp_path(src, "mig.img");
    g_autofree char *uri = g_strdup_printf("file:%s", path);
    struct stat st;

    mig_set_multifd(src, 4, true);
    migrate_uri(src, uri);
    migrate_wait_status(src, "completed", MIG_TIMEOUT);
    mig_assert_runstate(src, "postmigrate");
    mig_assert_ab_ok(src, RAM_SIZE);
    /* Fixed slots: the file stays about the size of RAM. */
    g_assert_cmpint(stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_size, <, 140 * MiB);
    load_file_and_check(src, uri, 4, true);
    qtest_quit(src);
}

static gchar *read_file(const char *path, gsize *len)
{
    gchar *data = NULL;

    g_assert_true(g_file_get_contents(path, &data, len, NULL));
    return data;
}

static uint64_t be64_at(const gchar *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++) {
        v = v << 8 | (uint8_t)p[i];
    }
    return v;
}

/*
 * Where the RAM part of a mapped-ram file ends: past the page area of the
 * last block. The START section lists each block as u8 length, name, be64
 * used_length and its 28-byte MappedRamHeader (pages_offset in the last 8
 * bytes); the next block's entry follows the page area of this one.
 */
static uint64_t mapped_ram_end(const gchar *data, gsize len)
{
    static const struct {
        const char *name;
        uint64_t size;
    } blocks[] = {
        {"pc.ram", RAM_SIZE}, {"vga.vram", 8 * MiB}, {"pc.bios", 256 * KiB}};
    uint64_t at = 0;

    /* The first entry is in the first few hundred bytes. */
    while (at + 64 < MIN(len, 64 * KiB) &&
           !((uint8_t)data[at] == 6 && !memcmp(data + at + 1, "pc.ram", 6) &&
             be64_at(data + at + 7) == RAM_SIZE)) {
        at++;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(blocks); i++) {
        size_t n = strlen(blocks[i].name);
        uint64_t pages_offset;

        g_assert_cmpuint(at + 1 + n + 8 + 28, <=, len);
        g_assert_cmpuint((uint8_t)data[at], ==, n);
        g_assert_cmpmem(data + at + 1, n, blocks[i].name, n);
        g_assert_cmpuint(be64_at(data + at + 1 + n), ==, blocks[i].size);
        pages_offset = be64_at(data + at + 1 + n + 8 + 20);
        at = pages_offset + blocks[i].size;
    }
    g_assert_cmpuint(at, <=, len);
    return at;
}

/*
 * Written with 4 channels: the RAM part (headers, bitmaps, every page
 * slot) is byte-identical to the file written without multifd (the
 * sections after it may differ: how many PART sections, the run state);
 * it loads with 1, 2 and 8 channels and without multifd; the
 * file written without multifd loads with 4.
 */
static void test_file_cross_load(void)
{
    QTestState *src = start_source();
    g_autofree char *path4 = mig_tmp_path(src, "mig4.img");
    g_autofree char *path0 = mig_tmp_path(src, "mig0.img");
    g_autofree char *uri4 = g_strdup_printf("file:%s", path4);
    g_autofree char *uri0 = g_strdup_printf("file:%s", path0);
    g_autofree gchar *data4 = NULL, *data0 = NULL;
    gsize len4, len0;
    static const int loads[] = {1, 2, 8, 0};

    mig_stop(src);
    mig_set_multifd(src, 4, true);
    migrate_uri(src, uri4);
    migrate_wait_status(src, "completed", MIG_TIMEOUT);
    mig_set_multifd(src, 0, true);
    migrate_uri(src, uri0);
    migrate_wait_status(src, "completed", MIG_TIMEOUT);

    data4 = read_file(path4, &len4);
    data0 = read_file(path0, &len0);
    g_assert_cmpuint(mapped_ram_end(data4, len4), ==,
                     mapped_ram_end(data0, len0));
    g_assert_true(memcmp(data4, data0, mapped_ram_end(data4, len4)) == 0);
    g_clear_pointer(&data4, g_free);
    g_clear_pointer(&data0, g_free);

    for (size_t i = 0; i < G_N_ELEMENTS(loads); i++) {
        load_file_and_check(src, uri4, loads[i], false);
    }
    load_file_and_check(src, uri0, 4, false);
    qtest_quit(src);
}

/* --- sockets --- */

typedef struct SocketCase {
    const char *transport; /* "unix" or "tcp" */
    const char *compression;
    bool live;
    const char *zero_page_detection; /* NULL: default (multifd) */
} SocketCase;

static char *socket_uri(QTestState *dst, const char *transport)
{
    if (!strcmp(transport, "unix")) {
        g_autofree char *sock = mig_tmp_path(dst, "mig.sock");

        return g_strdup_printf("unix:%s", sock);
    }
    return g_strdup_printf("tcp:127.0.0.1:%d", mig_free_tcp_port());
}

/*
 * The source uses 4 channels; the destination keeps the default of 2: it
 * takes the count from the channels' init messages.
 */
static void run_socket_case(QTestState *src, const SocketCase *tc)
{
    QTestState *dst = start_destination(true);
    g_autofree char *uri = socket_uri(dst, tc->transport);
    g_autofree char *comp = g_strdup_printf("'%s'", tc->compression);
    bool zero = !tc->zero_page_detection ||
                strcmp(tc->zero_page_detection, "none") != 0;

    mig_set_multifd(src, 4, false);
    migrate_set_parameter(src, "multifd-compression", comp);
    if (strcmp(tc->compression, "none")) {
        /*
         * The bandwidth migration.c measures is in bytes on the wire, so
         * well-compressed pages look like a slow link that never
         * converges: switch over after the first live pass.
         */
        migrate_set_parameter(src, "downtime-limit", "2000000");
    }
    if (tc->zero_page_detection) {
        g_autofree char *zpd = g_strdup_printf("'%s'", tc->zero_page_detection);

        migrate_set_parameter(src, "zero-page-detection", zpd);
    }
    mig_set_multifd(dst, 2, false);
    migrate_set_parameter(dst, "multifd-compression", comp);
    migrate_incoming_uri(dst, uri);
    migrate_and_wait(src, dst, uri);
    mig_assert_runstate(src, "postmigrate");
    mig_assert_runstate(dst, "paused");
    assert_multifd_figures(src, zero, strcmp(tc->compression, "none") != 0);
    assert_channels_used(src, 4, true, true);
    assert_channels_used(dst, 4, false, true);
    mig_assert_same_ram(src, dst);
    mig_assert_ab_ok(dst, RAM_SIZE);
    mig_cont(dst);
    mig_wait_alive(dst);
    qtest_quit(dst);
}

static void test_socket(gconstpointer opaque)
{
    const SocketCase *tc = opaque;
    QTestState *src = start_source();

    if (!tc->live) {
        mig_stop(src);
    }
    run_socket_case(src, tc);
    if (tc->live) {
        mig_assert_ab_ok(src, RAM_SIZE);
    }
    qtest_quit(src);
}

/* --- zero-page-detection --- */

/*
 * none / legacy / multifd: the same guest memory arrives over a socket
 * and through a mapped-ram file; only "none" counts no duplicate pages.
 */
static void test_zero_page_detection(void)
{
    static const char *const modes[] = {"none", "legacy", "multifd"};
    QTestState *src = start_source();

    mig_stop(src);
    for (size_t i = 0; i < G_N_ELEMENTS(modes); i++) {
        SocketCase tc = {"unix", "none", false, modes[i]};
        g_autofree char *name = g_strdup_printf("zpd-%s.img", modes[i]);
        g_autofree char *path = mig_tmp_path(src, name);
        g_autofree char *uri = g_strdup_printf("file:%s", path);
        g_autofree char *zpd = g_strdup_printf("'%s'", modes[i]);

        run_socket_case(src, &tc);

        mig_set_multifd(src, 3, true);
        migrate_set_parameter(src, "zero-page-detection", zpd);
        migrate_uri(src, uri);
        migrate_wait_status(src, "completed", MIG_TIMEOUT);
        assert_multifd_figures(src, strcmp(modes[i], "none") != 0, false);
        load_file_and_check(src, uri, 2, false);
    }
    qtest_quit(src);
}

/* --- a channel that breaks --- */

/*
 * A unix-socket proxy between source and destination that forwards every
 * connection, and breaks one after cut_after bytes from the source:
 */
typedef enum {
    CUT_DEST_SIDE, /* close its destination side: the channel closes */
    CUT_SRC_SIDE,  /* close its source side: the source's writes fail */
    CUT_STALL,     /* stop forwarding; close when the destination goes */
    CUT_CORRUPT,   /* xor byte cut_after with corrupt_xor, go on */
    CUT_REFUSE,    /* close connections from cut_conn on, unforwarded */
    CUT_HOLD,      /* stop forwarding; keep the source side open even
                    * when the destination goes (a dead peer that still
                    * holds the connection) */
} CutMode;

typedef struct Proxy {
    char *listen_path;
    char *target_path;
    int lfd;
    GThread *accept_thread;
    GPtrArray *threads;
    int cut_conn;
    CutMode mode;
    uint64_t cut_after;
    uint8_t corrupt_xor;
    int nconn;
    bool cut_done; /* atomic */
    bool stop;     /* atomic */
} Proxy;

typedef struct ProxyConn {
    Proxy *proxy;
    int index;
    int src_fd;
    int dst_fd;
} ProxyConn;

static int unix_connect(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    g_assert_cmpint(fd, >=, 0);
    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool proxy_stopping(Proxy *p)
{
    return __atomic_load_n(&p->stop, __ATOMIC_SEQ_CST);
}

/*
 * Copies what is readable on from to to, never past stream position limit;
 * false at EOF or error. With flip, the byte at stream position corrupt_at
 * is xor-ed with it on the way.
 */
static bool proxy_pump(Proxy *p, int from, int to, uint64_t *count,
                       uint8_t flip, uint64_t corrupt_at, uint64_t limit)
{
    char buf[65536];
    ssize_t n = read(from, buf, MIN(sizeof(buf), limit - *count));

    if (n <= 0) {
        return false;
    }
    if (flip && corrupt_at >= *count && corrupt_at < *count + n) {
        buf[corrupt_at - *count] ^= flip;
    }
    *count += n;
    for (ssize_t done = 0; to >= 0 && done < n;) {
        struct pollfd pfd = {.fd = to, .events = POLLOUT};
        ssize_t w;

        /* A peer that stopped reading must not hold proxy_stop up. */
        if (proxy_stopping(p)) {
            return false;
        }
        if (poll(&pfd, 1, 100) <= 0) {
            continue;
        }
        w = send(to, buf + done, n - done, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            continue;
        }
        if (w <= 0) {
            return false;
        }
        done += w;
    }
    return true;
}

static gpointer proxy_conn_thread(gpointer opaque)
{
    ProxyConn *pc = opaque;
    Proxy *p = pc->proxy;
    bool cut = pc->index == p->cut_conn;
    bool stalled = false;
    uint64_t forwarded = 0, back = 0;

    while (!proxy_stopping(p) && (pc->src_fd >= 0 || pc->dst_fd >= 0)) {
        struct pollfd fds[2] = {{.fd = pc->src_fd, .events = POLLIN},
                                {.fd = pc->dst_fd, .events = POLLIN}};

        /* Stalled: the source side is not read, so its writes block. */
        fds[0].events = stalled ? 0 : POLLIN;
        if (poll(fds, 2, 100) <= 0) {
            continue;
        }
        if (stalled && (fds[0].revents & (POLLHUP | POLLERR))) {
            break; /* the source gave up on this connection */
        }
        if (fds[0].revents && pc->src_fd >= 0 && !stalled) {
            bool corrupt = cut && p->mode == CUT_CORRUPT;
            /* A cut happens exactly at cut_after, mid-packet as chosen. */
            uint64_t limit = cut && !corrupt ? p->cut_after : UINT64_MAX;

            if (!proxy_pump(p, pc->src_fd, pc->dst_fd, &forwarded,
                            corrupt ? p->corrupt_xor : 0, p->cut_after,
                            limit)) {
                break;
            }
        }
        if (fds[1].revents && pc->dst_fd >= 0) {
            if (!proxy_pump(p, pc->dst_fd, pc->src_fd, &back, 0, 0,
                            UINT64_MAX)) {
                if (!(stalled && p->mode == CUT_HOLD)) {
                    break;
                }
                close(pc->dst_fd); /* the source side stays open */
                pc->dst_fd = -1;
            }
        }
        if (cut && (p->mode == CUT_CORRUPT ? forwarded > p->cut_after
                                           : forwarded >= p->cut_after)) {
            cut = false;
            if (p->mode == CUT_CORRUPT) {
                /* done in proxy_pump */
            } else if (p->mode == CUT_DEST_SIDE) {
                /* The destination sees the channel closed mid-stream. */
                close(pc->dst_fd);
                pc->dst_fd = -1;
            } else if (p->mode == CUT_SRC_SIDE) {
                /* The source's next write to this channel fails. */
                close(pc->src_fd);
                pc->src_fd = -1;
            } else {
                stalled = true;
            }
            __atomic_store_n(&p->cut_done, true, __ATOMIC_SEQ_CST);
        }
    }
    if (pc->src_fd >= 0) {
        close(pc->src_fd);
    }
    if (pc->dst_fd >= 0) {
        close(pc->dst_fd);
    }
    g_free(pc);
    return NULL;
}

static gpointer proxy_accept_thread(gpointer opaque)
{
    Proxy *p = opaque;

    while (!proxy_stopping(p)) {
        struct pollfd pfd = {.fd = p->lfd, .events = POLLIN};
        ProxyConn *pc;
        int fd;

        if (poll(&pfd, 1, 100) <= 0) {
            continue;
        }
        fd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            continue;
        }
        if (p->mode == CUT_REFUSE && p->nconn >= p->cut_conn) {
            p->nconn++;
            close(fd);
            continue;
        }
        pc = g_new0(ProxyConn, 1);
        pc->proxy = p;
        pc->index = p->nconn++;
        pc->src_fd = fd;
        pc->dst_fd = unix_connect(p->target_path);
        if (pc->dst_fd < 0) {
            /* The destination stopped listening (it failed): refuse too. */
            close(fd);
            g_free(pc);
            continue;
        }
        g_ptr_array_add(p->threads,
                        g_thread_new("proxy", proxy_conn_thread, pc));
    }
    return NULL;
}

static Proxy *proxy_start(const char *listen_path, const char *target_path,
                          int cut_conn, CutMode mode, uint64_t cut_after,
                          uint8_t corrupt_xor)
{
    Proxy *p = g_new0(Proxy, 1);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};

    p->listen_path = g_strdup(listen_path);
    p->target_path = g_strdup(target_path);
    p->cut_conn = cut_conn;
    p->mode = mode;
    p->cut_after = cut_after;
    /* Set before the threads that read it start (TSan saw the race). */
    p->corrupt_xor = corrupt_xor;
    p->threads = g_ptr_array_new();
    p->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert_cmpint(p->lfd, >=, 0);
    g_strlcpy(addr.sun_path, listen_path, sizeof(addr.sun_path));
    g_assert_cmpint(bind(p->lfd, (struct sockaddr *)&addr, sizeof(addr)), ==,
                    0);
    g_assert_cmpint(listen(p->lfd, 16), ==, 0);
    p->accept_thread = g_thread_new("proxy-accept", proxy_accept_thread, p);
    return p;
}

/* Waits until the proxy broke its connection. */
static void proxy_wait_cut(Proxy *p)
{
    for (int i = 0; i < qtest_scale_timeout(60) * 10; i++) {
        if (__atomic_load_n(&p->cut_done, __ATOMIC_SEQ_CST)) {
            return;
        }
        g_usleep(100 * 1000);
    }
    g_error("the proxy never saw enough traffic to break a channel");
}

static void proxy_stop(Proxy *p)
{
    __atomic_store_n(&p->stop, true, __ATOMIC_SEQ_CST);
    g_thread_join(p->accept_thread);
    for (guint i = 0; i < p->threads->len; i++) {
        g_thread_join(g_ptr_array_index(p->threads, i));
    }
    g_ptr_array_free(p->threads, true);
    close(p->lfd);
    unlink(p->listen_path);
    g_free(p->listen_path);
    g_free(p->target_path);
    g_free(p);
}

/*
 * Both sides with channels multifd channels over unix:, the source
 * migrating through a proxy that breaks connection 1 (the first multifd
 * channel; 0 is the main one) as mode says, after cut_after bytes (with
 * CUT_CORRUPT: xor-ing that byte with flip). The destination keeps serving
 * QMP after a failed load unless exit_on_error.
 */
typedef struct ProxiedMigration {
    QTestState *src;
    QTestState *dst;
    Proxy *proxy;
} ProxiedMigration;

static ProxiedMigration proxied_migration(int channels, CutMode mode,
                                          uint64_t cut_after, uint8_t flip,
                                          bool exit_on_error)
{
    ProxiedMigration m = {start_source(), start_destination(false), NULL};
    g_autofree char *real = mig_tmp_path(m.dst, "real.sock");
    g_autofree char *via = mig_tmp_path(m.src, "proxy.sock");
    g_autofree char *real_uri = g_strdup_printf("unix:%s", real);
    g_autofree char *via_uri = g_strdup_printf("unix:%s", via);

    m.proxy = proxy_start(via, real, 1, mode, cut_after, flip);
    mig_set_multifd(m.src, channels, false);
    mig_set_multifd(m.dst, channels, false);
    if (exit_on_error) {
        migrate_incoming_uri(m.dst, real_uri);
    } else {
        migrate_incoming_uri_keep(m.dst, real_uri);
    }
    migrate_uri(m.src, via_uri);
    return m;
}

/*
 * Connection 1 is the first multifd channel (0 is the main one). The
 * whole migration fails on both sides; the source's guest runs on with
 * its memory whole, and the destination's guest never runs.
 */
static void run_channel_failure(CutMode mode)
{
    /* Inside a data packet (the init message and a SYNC come first). */
    ProxiedMigration m = proxied_migration(2, mode, 4 * MiB + 123, 0, false);
    QTestState *src = m.src, *dst = m.dst;
    g_autofree char *src_err = NULL;
    g_autofree char *dst_err = NULL;

    migrate_wait_status(src, "failed", MIG_TIMEOUT);
    migrate_wait_status(dst, "failed", MIG_TIMEOUT);

    src_err = migrate_error_desc(src);
    dst_err = migrate_error_desc(dst);
    if (mode == CUT_DEST_SIDE) {
        /* The destination saw its channel close in the middle. */
        g_assert_nonnull(strstr(dst_err, "multifd channel"));
    } else {
        /* The source's write on that channel failed. */
        g_assert_nonnull(strstr(src_err, "multifd channel"));
    }
    mig_assert_runstate(src, "running");
    mig_assert_runstate(dst, "inmigrate");
    proxy_stop(m.proxy);

    /* The source's guest is whole and alive; it can migrate again. */
    mig_stop(src);
    mig_assert_ab_ok(src, RAM_SIZE);
    mig_cont(src);
    qtest_wait_serial(src, "BB", 60);
    qtest_quit(dst);
    qtest_quit(src);
}

static void test_fail_channel_closed(void)
{
    run_channel_failure(CUT_DEST_SIDE);
}

static void test_fail_channel_write_error(void)
{
    run_channel_failure(CUT_SRC_SIDE);
}

/*
 * No channel ever reaches the destination (the proxy drops them): the
 * source fails, and the destination gives up once the source has closed
 * the main channel: waiting for the channels at the first sync point, or,
 * when the source failed before sending that far (a slow machine, TSan),
 * reading the main stream, which ends in the middle of the RAM section.
 */
static void test_fail_channels_never_connect(void)
{
    ProxiedMigration m = proxied_migration(2, CUT_REFUSE, 0, 0, false);
    QTestState *src = m.src, *dst = m.dst;
    g_autofree char *dst_err = NULL;

    migrate_wait_status(src, "failed", MIG_TIMEOUT);
    mig_assert_runstate(src, "running");
    proxy_stop(m.proxy);
    migrate_wait_status(dst, "failed", MIG_TIMEOUT);
    dst_err = migrate_error_desc(dst);
    if (!strstr(dst_err, "before any multifd channel connected") &&
        !strstr(dst_err, "'ram': Unexpected end of migration stream")) {
        g_error("destination failed with: %s", dst_err);
    }
    mig_assert_runstate(dst, "inmigrate");
    qtest_quit(dst);
    qtest_quit(src);
}

/* The destination dies mid-way: the source fails and runs on. */
static void test_fail_destination_killed(void)
{
    /* The first channel stalls after 4 MiB: the migration cannot end. */
    ProxiedMigration m = proxied_migration(2, CUT_STALL, 4 * MiB, 0, true);
    QTestState *src = m.src;

    proxy_wait_cut(m.proxy);
    qtest_kill(m.dst);
    migrate_wait_status(src, "failed", MIG_TIMEOUT);
    proxy_stop(m.proxy);
    mig_assert_runstate(src, "running");
    mig_stop(src);
    mig_assert_ab_ok(src, RAM_SIZE);
    qtest_quit(src);
}

/*
 * The destination dies while the only channel is stuck, and that
 * connection stays open at the source (the proxy holds it, as a dead
 * peer behind a middlebox would): no write of the source ever fails, so
 * it must notice that the destination hung up the main channel, fail
 * with an error saying so within bounded time, and run on.
 */
static void test_fail_main_closed_channel_held(void)
{
    ProxiedMigration m = proxied_migration(1, CUT_HOLD, 4 * MiB, 0, true);
    QTestState *src = m.src;
    g_autofree char *src_err = NULL;
    int64_t killed_ms;

    proxy_wait_cut(m.proxy);
    qtest_kill(m.dst);
    killed_ms = g_get_monotonic_time() / 1000;
    migrate_wait_status(src, "failed", 30);
    /* A wait slice or two, not a timeout of minutes. */
    g_assert_cmpint(g_get_monotonic_time() / 1000 - killed_ms, <,
                    qtest_scale_timeout(10) * 1000);
    src_err = migrate_error_desc(src);
    g_test_message("source: %s", src_err);
    if (!strstr(src_err, "the destination closed the main channel")) {
        g_error("source error \"%s\" does not say the destination hung up",
                src_err);
    }
    proxy_stop(m.proxy);
    mig_assert_runstate(src, "running");
    mig_stop(src);
    mig_assert_ab_ok(src, RAM_SIZE);
    qtest_quit(src);
}

/*
 * migrate_cancel while a channel is stuck (the proxy stopped reading it):
 * cancelled, not failed; the source runs on and migrates again, straight
 * to a new destination.
 */
static void test_cancel_stuck_channel(void)
{
    ProxiedMigration m = proxied_migration(2, CUT_STALL, 4 * MiB, 0, false);
    QTestState *src = m.src, *dst = m.dst;
    QTestState *dst2 = NULL;
    g_autofree char *uri2 = NULL;

    proxy_wait_cut(m.proxy);
    qtest_qmp_assert_success(src, "{'execute': 'migrate_cancel'}");
    migrate_wait_status(src, "cancelled", MIG_TIMEOUT);
    migrate_wait_status(dst, "failed", MIG_TIMEOUT);
    mig_assert_runstate(src, "running");
    mig_assert_runstate(dst, "inmigrate");
    proxy_stop(m.proxy);
    qtest_quit(dst);

    dst2 = start_destination(true);
    uri2 = socket_uri(dst2, "unix");
    mig_set_multifd(dst2, 2, false);
    migrate_incoming_uri(dst2, uri2);
    mig_stop(src);
    migrate_and_wait(src, dst2, uri2);
    mig_assert_same_ram(src, dst2);
    mig_assert_ab_ok(dst2, RAM_SIZE);
    qtest_quit(dst2);
    qtest_quit(src);
}

/*
 * max-bandwidth holds for the channels too: about 100 MiB of a-b pages at
 * 32 MiB/s take about 3 s.
 */
static void test_max_bandwidth(void)
{
    QTestState *src = start_source();
    QTestState *dst = start_destination(true);
    g_autofree char *uri = socket_uri(dst, "unix");
    g_autoptr(JsonNode) ret = NULL;
    JsonObject *info;

    mig_stop(src);
    mig_set_multifd(src, 2, false);
    mig_set_multifd(dst, 2, false);
    migrate_set_parameter(src, "max-bandwidth", "33554432");
    migrate_incoming_uri(dst, uri);
    migrate_and_wait(src, dst, uri);
    ret = qtest_qmp_assert_success_ref(src, "{'execute': 'query-migrate'}");
    info = json_node_get_object(ret);
    g_assert_cmpint(qtest_json_get_int(info, "total-time"), >=, 2500);
    mig_assert_same_ram(src, dst);
    mig_assert_ab_ok(dst, RAM_SIZE);
    qtest_quit(dst);
    qtest_quit(src);
}

/*
 * A destination that receives a damaged channel fails with a message
 * naming what is wrong, never a crash; the source fails and runs on.
 * Offsets are into the first channel's bytes: the 64-byte init message,
 * then the setup SYNC packet (288 bytes), then the first data packet
 * (288-byte header, then be64 page offsets).
 */
typedef struct CorruptCase {
    uint64_t at;
    uint8_t xor ;
    const char *expected;
} CorruptCase;

#define PKT1 (64 + 288)

static void test_corrupt_channel(gconstpointer opaque)
{
    const CorruptCase *tc = opaque;
    ProxiedMigration m =
        proxied_migration(2, CUT_CORRUPT, tc->at, tc->xor, false);
    QTestState *src = m.src, *dst = m.dst;
    g_autofree char *dst_err = NULL;
    g_autofree char *src_err = NULL;

    migrate_wait_status(dst, "failed", MIG_TIMEOUT);
    dst_err = migrate_error_desc(dst);
    if (!strstr(dst_err, tc->expected)) {
        g_error("destination error \"%s\" does not say \"%s\"", dst_err,
                tc->expected);
    }
    mig_assert_runstate(dst, "inmigrate");
    /*
     * The destination closed every connection: the source notices within
     * a wait slice or at its next write, and says so.
     */
    migrate_wait_status(src, "failed", 30);
    src_err = migrate_error_desc(src);
    g_test_message("source: %s", src_err);
    if (!strstr(src_err, "multifd channel") &&
        !strstr(src_err, "the destination closed") &&
        !strstr(src_err, "Unable to write to socket")) {
        g_error("source error \"%s\" does not say what broke", src_err);
    }
    mig_assert_runstate(src, "running");
    proxy_stop(m.proxy);
    qtest_quit(dst);
    qtest_quit(src);
}

/* --- refusals --- */

static void test_refusals(void)
{
    QTestState *s = start_source();
    QTestState *d = start_destination(false);
    g_autofree char *file = mig_tmp_path(s, "m.img");
    g_autofree char *sock = mig_tmp_path(s, "m.sock");
    g_autofree char *dsock = mig_tmp_path(d, "in.sock");
    g_autofree char *duri = g_strdup_printf("unix:%s", dsock);

    /* Channel counts. */
    mig_expect_multifd_channels_refused(s, 0);

    /* multifd needs extra channels: file: only with mapped-ram. */
    mig_set_multifd(s, 4, false);
    /* ... and direct-io a second descriptor: file: only. */
    mig_expect_multifd_transport_refusals(s, file, sock);
    /* Compression is for sockets only. */
    migrate_set_capability(s, "mapped-ram", true);
    mig_expect_compression_refused(s, "zstd");
    g_assert_false(g_file_test(file, G_FILE_TEST_EXISTS));
    mig_assert_runstate(s, "running");

    /* A destination decides about multifd before it starts listening. */
    migrate_incoming_uri(d, duri);
    mig_expect_error_both(
        d, "Multifd must be set before incoming starts",
        "migrate_set_capability multifd on",
        "{'execute': 'migrate-set-capabilities', 'arguments': "
        "{'capabilities': [{'capability': 'multifd', "
        "'state': true}]}}");
    qtest_quit(d);
    qtest_quit(s);
}

int main(int argc, char **argv)
{
    static const SocketCase socket_cases[] = {
        {"unix", "none", true, NULL}, {"unix", "zlib", true, NULL},
        {"unix", "zstd", true, NULL}, {"tcp", "none", true, NULL},
        {"tcp", "zlib", true, NULL},  {"tcp", "zstd", true, NULL},
    };

    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/multifd/file/mapped-ram", test_file_mapped_ram);
    g_test_add_func("/multifd/file/mapped-ram/live", test_file_mapped_ram_live);
    g_test_add_func("/multifd/file/mapped-ram/cross-load",
                    test_file_cross_load);
    for (size_t i = 0; i < G_N_ELEMENTS(socket_cases); i++) {
        const SocketCase *tc = &socket_cases[i];
        g_autofree char *name = g_strdup_printf("/multifd/%s/%s/live",
                                                tc->transport, tc->compression);

        g_test_add_data_func(name, tc, test_socket);
    }
    g_test_add_func("/multifd/zero-page-detection", test_zero_page_detection);
    g_test_add_func("/multifd/failed/channel-closed", test_fail_channel_closed);
    g_test_add_func("/multifd/failed/channel-write-error",
                    test_fail_channel_write_error);
    g_test_add_func("/multifd/failed/channels-never-connect",
                    test_fail_channels_never_connect);
    g_test_add_func("/multifd/failed/destination-killed",
                    test_fail_destination_killed);
    g_test_add_func("/multifd/failed/main-closed-channel-held",
                    test_fail_main_closed_channel_held);
    static const CorruptCase corrupt_cases[] = {
        {0, 0xff, "multifd: received packet magic"},
        {24, 0x80, "is greater than number of channels"},
        {64 + 4, 0x40, "multifd: received packet version"},
        {PKT1 + 8, 0x10, "multifd: packet has unknown flags"},
        {PKT1 + 12, 0x01, "pages, more than the maximum 128"},
        {PKT1 + 24, 0x80, "multifd: packet number"},
        {PKT1 + 32, 0x20, "multifd: unknown ramblock"},
        {PKT1 + 288, 0x10, "is outside of ramblock"},
    };

    g_test_add_func("/multifd/cancel", test_cancel_stuck_channel);
    g_test_add_func("/multifd/unix/max-bandwidth", test_max_bandwidth);
    for (size_t i = 0; i < G_N_ELEMENTS(corrupt_cases); i++) {
        g_autofree char *name = g_strdup_printf("/multifd/bad-channel/%" PRIu64,
                                                corrupt_cases[i].at);

        g_test_add_data_func(name, &corrupt_cases[i], test_corrupt_channel);
    }
    g_test_add_func("/multifd/refusals", test_refusals);
    return g_test_run();
}
