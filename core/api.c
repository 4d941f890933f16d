/* The table of core functions handed to every plugin. Append-only: never reorder or remove a member. */
#include "forum.h"

const forum_api_t forum_api = {
    .version = FORUM_API_VERSION,
    .size = sizeof(forum_api_t),
    .route = forum_plugin_add_route,
    .on_frame = forum_plugin_add_frame,
    .on_event = forum_plugin_add_event,
    .migration = forum_plugin_add_migration,
    .log = forum_log,
    .req_param = forum_req_param,
    .req_query = forum_req_query,
    .req_body = forum_req_body,
    .req_user = forum_req_user,
    .req_peer = forum_req_peer,
    .req_alive = forum_req_alive,
    .res_json_begin = forum_res_json_begin,
    .res_json_end = forum_res_json_end,
    .res_error = forum_res_error,
    .res_empty = forum_res_empty,
    .res_header = forum_res_header,
    .session_start = forum_req_session_start,
    .session_end = forum_req_session_end,
    .work_queue = forum_work_queue,
    .db_stmt = forum_db_stmt,
    .db_bind_int = forum_db_bind_int,
    .db_bind_text = forum_db_bind_text,
    .db_bind_null = forum_db_bind_null,
    .db_step = forum_db_step,
    .db_col_int = forum_db_col_int,
    .db_col_text = forum_db_col_text,
    .db_col_is_null = forum_db_col_is_null,
    .db_rows_json = forum_db_rows_json,
    .db_row_json = forum_db_row_json,
    .db_last_id = forum_db_last_id,
    .db_begin = forum_db_begin,
    .db_commit = forum_db_commit,
    .db_rollback = forum_db_rollback,
    .publish_user = forum_hub_publish_user,
    .publish_users = forum_hub_publish_users,
    .publish_all = forum_hub_publish_all,
    .ws_send = forum_hub_send,
    .ws_error = forum_hub_send_error,
    .ws_user = forum_hub_ws_user,
    .user_online = forum_hub_user_online,
    .now_ms = forum_now_ms,
    .format_time = forum_format_time,
    .setting = forum_plugin_setting,
    .req_hold = forum_req_hold,
    .req_release = forum_req_release,
    .text_trim = forum_text_trim,
    .ws_queued = forum_hub_ws_queued,
    .defer = forum_work_defer,
    .publish_user_except = forum_hub_publish_user_except,
    .db_version = forum_db_version,
    .res_json_raw = forum_res_json_raw,
    /* --- replays kept by the connection (version 3) --- */
    .ws_replay_set = forum_hub_replay_set,
    .ws_replay_get = forum_hub_replay_get,
    .ws_drain_wait = forum_hub_drain_wait,

    /* --- plugin settings (version 3) --- */
    .setting_uint = forum_plugin_setting_uint,
    .setting_bool = forum_plugin_setting_bool,

    /* --- database failures (version 3) --- */
    .db_failure = forum_db_failure,
    .res_db_error = forum_res_db_error,
    .ws_db_error = forum_ws_db_error,

    /* --- one validator for text fields (version 3) --- */
    .text_field = forum_text_field,

    /* --- monotonic time (version 3) --- */
    .mono_ms = forum_mono_ms,

    /* --- messages several plugins share: one id sequence, one replay (version 4) --- */
    .replay_source = forum_plugin_add_replay_source,
    .db_next_id = forum_db_next_id,

    /* --- rooms (version 4) --- */
    .publish_all_but = forum_hub_publish_all_but,

    /* --- two backends: SQLite and PostgreSQL (version 5) --- */
    .db_backend = forum_db_backend,
    .migration_for = forum_plugin_add_migration_for,

    /* --- a batch at a time on PostgreSQL (version 6) --- */
    .db_next_ids = forum_db_next_ids,
    .wait = forum_db_wait,
    .wake = forum_fiber_wake_waiting,
    .db_queue = forum_db_queue,
    .shared_limit = forum_bus_shared_limit,
    .publish_message = forum_hub_publish_message,
    .publish_message_all_but = forum_hub_publish_message_all_but,
};
