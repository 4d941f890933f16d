/*
 * Debian's libh2o-dev installs h2o/http2_internal.h, which includes "khash.h", but not khash.h itself.
 * core/conn_limits.c needs that header only for the layout of h2o_http2_conn_t (its socket, its
 * stream ids, its state and its write buffer), never for h2o's stream table. This header declares what
 * the layout needs: the table is an opaque pointer. The one inline lookup of the header that walks the
 * table is made to refer to a function that exists nowhere, so that any use of it fails to link
 * instead of misbehaving.
 */
#ifndef FORUM_H2O_COMPAT_KHASH_H
#define FORUM_H2O_COMPAT_KHASH_H

typedef unsigned khiter_t;

#define KHASH_MAP_INIT_INT64(name, khval_t) typedef struct forum_opaque_kh_##name forum_opaque_kh_##name##_t;
#define khash_t(name) forum_opaque_kh_##name##_t

void *forum_h2o_stream_table_is_opaque(const void *table, ...);
#define kh_get(name, h, k) ((khiter_t)(size_t)forum_h2o_stream_table_is_opaque((h), (k)))
#define kh_end(h) ((khiter_t)(size_t)forum_h2o_stream_table_is_opaque((h)))
#define kh_val(h, i) (forum_h2o_stream_table_is_opaque((h), (i)))

#endif
