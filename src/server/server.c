/*
 * server.c - the server's life cycle (server.h): event base with pthread
 * support (so the engine thread can event_active() the loop), the listener,
 * the model loader thread, the engine wake-up, signals and the drain.
 */
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log.h"
#include "base/util.h"
#include "engine/engine.h"
#include "server/server_int.h"

server_params server_default_params(void) {
    server_params p;
    memset(&p, 0, sizeof p);
    p.http = http_default_params();
    p.engine = inferd_engine_default_params();
    p.drain_timeout_s = 30;
    return p;
}

/* Engine thread: keep it short (DESIGN.md). */
static void on_wake(void *arg) {
    server *s = arg;
    event_active(s->wake_ev, EV_READ, 0);
}

static void on_wake_ev(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    openai_on_engine_events(arg);
}

static void model_name_from_path(const char *path, char *out, size_t n) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen(base);
    if (len > 5 && !strcmp(base + len - 5, ".gguf")) len -= 5;
    if (len >= n) len = n - 1;
    memcpy(out, base, len);
    out[len] = 0;
}

/* Loader thread: the model loads while the loop already answers /health. */
static void *loader_main(void *arg) {
    server *s = arg;
    inferd_engine *e = NULL;
    int rc = inferd_engine_new(&s->p.engine, &e, s->load_err, sizeof s->load_err);
    if (rc == 0) {
        s->engine = e;
        s->tok = engine_tokenizer(e);
        rc = chat_setup(s, s->load_err, sizeof s->load_err);
    }
    s->load_status = rc;
    event_active(s->loaded_ev, EV_READ, 0);
    return NULL;
}

static void on_loaded(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    server *s = arg;
    pthread_join(s->loader, NULL);
    s->loader_started = 0;
    if (s->load_status) {
        s->exit_status = s->load_status;
        snprintf(s->exit_err, sizeof s->exit_err, "%s", s->load_err);
        event_base_loopbreak(s->base);
        return;
    }
    inferd_engine_stats st;
    inferd_engine_get_stats(s->engine, &st);
    s->n_vocab = st.n_vocab;
    s->max_model_len = st.max_model_len;
    s->created = time_unix_s();
    inferd_engine_set_wake(s->engine, on_wake, s);
    if (s->draining) { /* a signal came while loading */
        server_check_drained(s);
        return;
    }
    s->ready = 1;
    char f[400];
    snprintf(f, sizeof f, "\"model\":\"%s\",\"max_model_len\":%u,\"kv_blocks\":%u", s->model_name,
             st.max_model_len, st.kv_blocks_total);
    log_fields(LOG_INFO, "model loaded", f);
    if (s->p.on_loaded) s->p.on_loaded(s->p.cb_arg);
}

/* Exits the loop once nothing is in flight and every reply is written out
 * (checked again every 20 ms while bytes are still queued). */
void server_check_drained(server *s) {
    if (!s->draining) return;
    if (s->n_gens || http_server_busy(s->http) || s->loader_started) return;
    if (http_server_flushed(s->http) || s->flush_tries > 100) {
        event_base_loopbreak(s->base);
        return;
    }
    s->flush_tries++;
    struct timeval tv = {0, 20000};
    event_add(s->flush_ev, &tv);
}

static void on_flush_check(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    server_check_drained(arg);
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    server *s = arg;
    if (!s->drain_deadline_passed) {
        s->drain_deadline_passed = 1;
        log_warn("drain timeout: aborting %u requests still in flight", s->n_gens);
        openai_abort_all(s);
        /* Aborted requests finish within a step; give them a moment. */
        struct timeval tv = {2, 0};
        evtimer_add(s->drain_ev, &tv);
        server_check_drained(s);
        return;
    }
    event_base_loopbreak(s->base);
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
    (void)what;
    server *s = arg;
    if (s->draining) {
        log_warn("second signal %d: exiting now", (int)sig);
        event_base_loopbreak(s->base);
        return;
    }
    s->draining = 1;
    s->ready = 0;
    char f[128];
    snprintf(f, sizeof f, "\"signal\":%d,\"in_flight\":%u,\"drain_timeout_s\":%g", (int)sig, s->n_gens,
             s->p.drain_timeout_s);
    log_fields(LOG_INFO, "draining", f);
    http_server_drain(s->http);
    struct timeval tv;
    tv.tv_sec = (time_t)s->p.drain_timeout_s;
    tv.tv_usec = (suseconds_t)((s->p.drain_timeout_s - (double)tv.tv_sec) * 1e6);
    evtimer_add(s->drain_ev, &tv);
    server_check_drained(s);
}

int server_run(const server_params *params, char *err, size_t err_size) {
    static int threads_ready;
    if (!threads_ready) {
        if (evthread_use_pthreads()) return err_set(err, err_size, INFERD_EINTERNAL, "libevent: no pthreads");
        threads_ready = 1;
    }
    int rc = 0;
    server *s = calloc(1, sizeof *s);
    if (!s) return err_set(err, err_size, INFERD_ENOMEM, "server: out of memory");
    s->p = *params;
    if (params->served_model_name && *params->served_model_name)
        snprintf(s->model_name, sizeof s->model_name, "%s", params->served_model_name);
    else model_name_from_path(params->engine.model_path ? params->engine.model_path : "model",
                              s->model_name, sizeof s->model_name);
    signal(SIGPIPE, SIG_IGN);
    s->base = event_base_new();
    if (!s->base) {
        rc = err_set(err, err_size, INFERD_ENOMEM, "libevent: cannot create the event loop");
        goto done;
    }
    s->wake_ev = event_new(s->base, -1, 0, on_wake_ev, s);
    s->loaded_ev = event_new(s->base, -1, 0, on_loaded, s);
    s->drain_ev = evtimer_new(s->base, on_drain_timeout, s);
    s->flush_ev = evtimer_new(s->base, on_flush_check, s);
    s->sigterm_ev = evsignal_new(s->base, SIGTERM, on_signal, s);
    s->sigint_ev = evsignal_new(s->base, SIGINT, on_signal, s);
    if (!s->wake_ev || !s->loaded_ev || !s->drain_ev || !s->flush_ev || !s->sigterm_ev || !s->sigint_ev) {
        rc = err_set(err, err_size, INFERD_ENOMEM, "libevent: out of memory");
        goto done;
    }
    evsignal_add(s->sigterm_ev, NULL);
    evsignal_add(s->sigint_ev, NULL);
    rc = http_server_new(s->base, &params->http, server_route, s, &s->http, err, err_size);
    if (rc) goto done;
    char f[300];
    snprintf(f, sizeof f, "\"host\":\"%s\",\"port\":%d,\"model\":\"%s\"", params->http.host,
             http_server_port(s->http), s->model_name);
    log_fields(LOG_INFO, "listening", f);
    if (params->on_listening) params->on_listening(http_server_port(s->http), params->cb_arg);
    if (pthread_create(&s->loader, NULL, loader_main, s)) {
        rc = err_set(err, err_size, INFERD_EINTERNAL, "server: cannot start the loader thread");
        goto done;
    }
    s->loader_started = 1;
    event_base_dispatch(s->base);
    if (s->exit_status) {
        rc = err_set(err, err_size, s->exit_status, "%s", s->exit_err);
    } else {
        log_fields(LOG_INFO, "stopped", NULL);
    }
done:
    if (s->loader_started) pthread_join(s->loader, NULL);
    inferd_engine_free(s->engine); /* stops the engine thread: no more events */
    s->engine = NULL;
    openai_free_all(s);
    http_server_free(s->http);
    chat_teardown(s);
    if (s->wake_ev) event_free(s->wake_ev);
    if (s->loaded_ev) event_free(s->loaded_ev);
    if (s->drain_ev) event_free(s->drain_ev);
    if (s->flush_ev) event_free(s->flush_ev);
    if (s->sigterm_ev) event_free(s->sigterm_ev);
    if (s->sigint_ev) event_free(s->sigint_ev);
    if (s->base) event_base_free(s->base);
    free(s);
    return rc;
}
