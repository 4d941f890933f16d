/*
 * The WebSocket side of chat, wired together: which frames and hub events go where (message.send in
 * send.c, typing in typing.c, the ?after= replay's source in replay.c), the read frame.
 */
#include <stdlib.h>
#include <string.h>
#include "chat.h"

#define api chat_api

void chat_send_gen(forum_ws_t *ws, yajl_gen g)
{
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);
    api->ws_send(ws, (const char *)buf, len, 0);
}

static void on_close(const forum_event_t *ev)
{
    chat_send_forget(ev->ws);
}

yajl_val chat_member(yajl_val frame, const char *key)
{
    const char *path[] = {key, NULL};
    return yajl_tree_get(frame, path, yajl_t_any);
}

/* The other user named by `key`: an existing user other than `me`; 0 after sending an error. */
int64_t chat_frame_user(forum_ws_t *ws, yajl_val frame, const char *key, int64_t me, const char *ref)
{
    yajl_val v = chat_member(frame, key);
    if (v == NULL || !YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) <= 0) {
        api->ws_error(ws, "bad_request", v == NULL ? "a user id is required" : "must be a user id", ref);
        return 0;
    }
    if (YAJL_GET_INTEGER(v) == me || !chat_user_exists(YAJL_GET_INTEGER(v))) {
        api->ws_error(ws, "validation", YAJL_GET_INTEGER(v) == me ? "not to yourself" : "no such user", ref);
        return 0;
    }
    return YAJL_GET_INTEGER(v);
}

static void on_read(forum_ws_t *ws, yajl_val frame)
{
    int64_t me = api->ws_user(ws), with;
    yajl_val up_to = chat_member(frame, "up_to");
    if ((with = chat_frame_user(ws, frame, "with", me, "read")) == 0)
        return;
    if (up_to == NULL || !YAJL_IS_INTEGER(up_to) || YAJL_GET_INTEGER(up_to) < 0) {
        api->ws_error(ws, "bad_request", "up_to must be a message id", "read");
        return;
    }
    if (!chat_mark_read(me, with, YAJL_GET_INTEGER(up_to)))
        api->ws_db_error(ws, "the read mark could not be stored", "read");
}

int chat_live_init(forum_plugin_t *p)
{
    return api->on_frame(p, "message.send", chat_send_frame) || api->on_frame(p, "typing", chat_typing_frame) ||
           api->on_frame(p, "read", on_read) || api->replay_source(p, &chat_replay_source) ||
           api->on_event(p, "ws.close", on_close) || api->on_event(p, "user.offline", chat_typing_offline);
}

void chat_live_fini(void)
{
    chat_send_fini();
    chat_typing_fini();
}
