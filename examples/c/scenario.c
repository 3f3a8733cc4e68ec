// The quickstart scenario in C: log in (when params.user is set), fetch
// the home page, post an order to the echo route with the session's token
// and check it comes back. Bindings come from wit-bindgen's C
// generator (`wit-bindgen c wit --world scenario`); scripts/build-plugins.sh
// compiles this with clang for wasm32-wasip1 and links it into a component
// with wasm-component-ld.
//
// Ownership follows the generated header: strings and lists the host
// returns are ours to free (`*_free`); an error string we return is
// allocated (`scenario_string_dup`) and freed by the bindings afterwards.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenario.h"

// Think time between iterations, from `params: { think_ms: N }`.
static unsigned think_ms = 0;

// `Bearer <token>` once logged in, or "".
static char auth[160] = "";

// The string value of `"key":"..."` in a flat JSON text (no escapes), or
// false. Enough for the params and the login reply here.
static bool json_string(const char *json, const char *key, char *out, size_t n) {
  char pattern[64];
  snprintf(pattern, sizeof pattern, "\"%s\"", key);
  const char *at = strstr(json, pattern);
  if (!at) return false;
  at = strchr(at + strlen(pattern), '"');
  if (!at) return false;
  const char *end = strchr(at + 1, '"');
  if (!end || (size_t)(end - at - 1) >= n) return false;
  memcpy(out, at + 1, end - at - 1);
  out[end - at - 1] = 0;
  return true;
}

static void fail(scenario_string_t *err, const char *what, const char *detail) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, detail);
  scenario_string_dup(err, msg);
}

// A transport failure as text (the host's error variant).
static void describe(const loadtest_scenario_http_error_t *e, char *out, size_t n) {
  const scenario_string_t *s = NULL;
  const char *kind = "timeout";
  switch (e->tag) {
  case LOADTEST_SCENARIO_HTTP_ERROR_INVALID_REQUEST: kind = "invalid request"; s = &e->val.invalid_request; break;
  case LOADTEST_SCENARIO_HTTP_ERROR_CONNECT: kind = "connect"; s = &e->val.connect; break;
  case LOADTEST_SCENARIO_HTTP_ERROR_TRANSPORT: kind = "transport"; s = &e->val.transport; break;
  }
  if (s) {
    snprintf(out, n, "%s: %.*s", kind, (int)s->len, (const char *)s->ptr);
  } else {
    snprintf(out, n, "%s", kind);
  }
}

// One request; on failure fills `err` and returns false. The strings are
// borrowed: the host copies what it needs during the call.
static bool send(const char *method, const char *url, const char *name, const char *json,
                 bool want_body, loadtest_scenario_http_response_t *resp, scenario_string_t *err) {
  scenario_tuple2_string_string_t headers[2];
  size_t n_headers = 0;
  loadtest_scenario_http_request_t req = {0};
  scenario_string_set(&req.method, method);
  scenario_string_set(&req.url, url);
  req.name.is_some = true;
  scenario_string_set(&req.name.val, name);
  req.discard_body = !want_body;
  req.discard_headers = true;
  if (auth[0] && strcmp(url, "/login") != 0) {
    scenario_string_set(&headers[n_headers].f0, "authorization");
    scenario_string_set(&headers[n_headers].f1, auth);
    n_headers++;
  }
  req.headers.ptr = headers;
  req.headers.len = n_headers;
  if (json) {
    scenario_string_set(&headers[n_headers].f0, "content-type");
    scenario_string_set(&headers[n_headers].f1, "application/json");
    req.headers.len = ++n_headers;
    req.body.is_some = true;
    req.body.val.ptr = (uint8_t *)json;
    req.body.val.len = strlen(json);
  }
  loadtest_scenario_http_error_t e;
  if (loadtest_scenario_http_send(&req, resp, &e)) {
    return true;
  }
  char detail[200];
  describe(&e, detail, sizeof detail);
  loadtest_scenario_http_error_free(&e);
  fail(err, name, detail);
  return false;
}

static void check(const char *name, bool passed) {
  scenario_string_t s;
  scenario_string_set(&s, name);
  loadtest_scenario_metrics_check(&s, passed);
}

bool exports_scenario_init(scenario_string_t *params, scenario_string_t *err) {
  // The params are JSON; the one field this scenario reads is a number.
  char text[256] = {0};
  size_t n = params->len < sizeof text - 1 ? params->len : sizeof text - 1;
  memcpy(text, params->ptr, n);
  scenario_string_free(params);
  const char *field = strstr(text, "\"think_ms\"");
  if (field) {
    const char *colon = strchr(field, ':');
    char *end = NULL;
    long v = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || end == colon + 1 || v < 0) {
      scenario_string_dup(err, "params.think_ms: expected a whole number of milliseconds");
      return false;
    }
    think_ms = (unsigned)v;
  }
  char user[64];
  if (json_string(text, "user", user, sizeof user)) {
    char body[128], who[80];
    snprintf(who, sizeof who, "%s-%u", user, loadtest_scenario_vu_id());
    snprintf(body, sizeof body, "{\"user\":\"%s\"}", who);
    loadtest_scenario_http_response_t res;
    if (!send("POST", "/login", "login", body, true, &res, err)) {
      return false;
    }
    char reply[256] = {0}, token[128];
    memcpy(reply, res.body.ptr, res.body.len < sizeof reply - 1 ? res.body.len : sizeof reply - 1);
    bool ok = res.status == 200 && json_string(reply, "token", token, sizeof token);
    check("logged in", ok);
    loadtest_scenario_http_response_free(&res);
    if (!ok) {
      fail(err, "login", who);
      return false;
    }
    snprintf(auth, sizeof auth, "Bearer %s", token);
  }
  return true;
}

bool exports_scenario_iteration(scenario_string_t *err) {
  loadtest_scenario_http_response_t home;
  if (!send("GET", "/", "home", NULL, false, &home, err)) {
    return false;
  }
  check("home status is 200", home.status == 200);
  loadtest_scenario_http_response_free(&home);

  char order[64];
  snprintf(order, sizeof order, "{\"vu\":%u,\"item\":%llu}", loadtest_scenario_vu_id(),
           (unsigned long long)loadtest_scenario_vu_iteration());
  loadtest_scenario_http_response_t echoed;
  if (!send("POST", "/echo", "order", order, true, &echoed, err)) {
    return false;
  }
  bool same = echoed.body.len == strlen(order) && memcmp(echoed.body.ptr, order, echoed.body.len) == 0;
  check("order echoed", echoed.status == 200 && same);
  loadtest_scenario_http_response_free(&echoed);

  if (think_ms > 0) {
    loadtest_scenario_vu_sleep(think_ms);
  }
  return true;
}
