/*
 * Small helpers compiled into each feature plugin that needs them (each plugin gets its own copy:
 * plugins never call into each other).
 */
#ifndef PLUGIN_UTIL_H
#define PLUGIN_UTIL_H

#include <stdint.h>
#include "../forum_plugin.h"

/** Writes a NUL-terminated string (null for NULL). */
void pu_str(yajl_gen g, const char *s);
/** Writes "key": string. */
void pu_key_str(yajl_gen g, const char *key, const char *value);
/** Writes "key": integer. */
void pu_key_int(yajl_gen g, const char *key, int64_t value);
/** A positive decimal id ("12"), or 0 when `s` is anything else. */
int64_t pu_parse_id(const char *s);
/**
 * Reads query parameter `name` as a whole number in [min, max]; absent gives `dflt`. Returns -1 (and
 * answers 400 naming the parameter) when present but out of range or not a number.
 */
int64_t pu_query_int(const forum_api_t *api, forum_req_t *req, const char *name, int64_t min, int64_t max, int64_t dflt);
/**
 * Writes one page of a keyset listing: `"name": [row…], "cursor_key": ID|null`. `s` was bound with LIMIT
 * limit + 1: the extra row, never written, says whether a next page exists; its cursor is the id (column 0)
 * of the last row written. Returns 0, or -1 when a step failed (logged): the page is then incomplete.
 */
int pu_write_page(const forum_api_t *api, yajl_gen g, forum_stmt_t *s, const char *name, int64_t limit, const char *cursor_key,
                  void (*write_row)(yajl_gen g, forum_stmt_t *s));
/** Sends the generator's JSON to one connection. */
void pu_ws_send_gen(const forum_api_t *api, forum_ws_t *ws, yajl_gen g);
/** The member `key` of a frame, or NULL. */
yajl_val pu_member(yajl_val frame, const char *key);
/** Publishes the generator's JSON to everyone. */
void pu_publish_all(const forum_api_t *api, yajl_gen g);

/**
 * A text member of a body, read by the core's one validator (api->text_field): trimmed, 1..max characters,
 * `flags` FORUM_TEXT_MULTILINE for a body, 0 for one line (a title). Returns the trimmed text (pointing into
 * the body, not NUL-terminated) and its length, or NULL after answering 400/422 with the field.
 */
const char *pu_text_member(const forum_api_t *api, forum_req_t *req, yajl_val body, const char *name, size_t max, int flags,
                           size_t *len);

/**
 * Sends the error frame for a field of a frame the core's validator refused (`status` 400 or 422, `t` what
 * api->text_field said): "bad_request" or "validation", its message prefixed with the field's name.
 */
void pu_ws_field_error(const forum_api_t *api, forum_ws_t *ws, int status, const char *field, const forum_text_t *t, const char *ref);

/** The member `key` of a frame, true or false: 1 or 0; -1 after answering bad_request ("KEY must be true or false"). */
int pu_frame_bool(const forum_api_t *api, forum_ws_t *ws, yajl_val frame, const char *key, const char *ref);
/** The `up_to` of a read frame, a message id; -1 after answering bad_request. */
int64_t pu_frame_up_to(const forum_api_t *api, forum_ws_t *ws, yajl_val frame, const char *ref);

enum { PU_CLIENT_ID_MAX = 64 };

/**
 * The optional `client_id` of a body (a retry's key: 1..64 characters, taken as sent). Returns 1 with
 * `*out` set (NULL when absent), or 0 after answering 400/422.
 */
int pu_client_id(const forum_api_t *api, forum_req_t *req, yajl_val body, const char **out);

#endif
