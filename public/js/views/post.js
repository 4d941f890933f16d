/*
 * One post (#/post/ID): its whole text, its comments oldest first (fifty at a time, "Load more
 * comments" after the newest one shown) and the form that adds one. A post that does not exist
 * gets a plain "not found".
 *
 * Live: a comment.created for this post goes at the end of the list once every older comment is
 * shown (until then "Load more comments" brings it), and the count goes up either way. The list is
 * keyed by id, so the comment you send and the frame that echoes it are one.
 */
import { h, replace } from '../dom.js';
import { api, errorOf } from '../api.js';
import { field, fieldText, formMessage, onSubmit, showErrors } from '../form.js';
import { IdList, categoryNames, commentItem, fetchMore, postDetails } from '../posts.js';

const PAGE = 50;

export function postView(ctx) {
    const { forum } = ctx;
    const id = ctx.params.id;
    let gone = false;
    let details = null;       // postDetails() once the post is loaded
    let count = 0;            // the post's comment count as shown
    const counted = new Set(); // comments that arrived after the count was read, already in it
    let nextAfter = null;
    let loaded = false;
    let sent = false;
    let refreshAgain = false;
    let loadingFirst = false;
    let loadingMore = false;
    const early = [];         // comments that came live before the first answer

    const heading = h('h1', { id: 'post-title', tabindex: -1 }, 'Loading the post…');
    const back = h('p', { class: 'back-link' }, h('a', { href: forum.feedHash }, '← All posts'));
    const article = h('div', { class: 'post-slot' });
    const status = h('div', { class: 'post-status' });
    const listEl = h('ol', { class: 'comment-list', 'aria-labelledby': 'comments-title' });
    const list = new IdList(listEl, { descending: false });
    const empty = h('p', { class: 'muted', hidden: true }, 'No comments yet. Be the first to write one.');
    const moreError = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const more = h('button', { type: 'button', class: 'button button-quiet load-more', hidden: true, onclick: () => loadMore() },
        'Load more comments');
    const announcer = h('p', { class: 'visually-hidden', 'aria-live': 'polite' });

    const commentField = field('comment-body', 'Add a comment',
        h('textarea', { name: 'body', rows: 3, maxlength: 5000, required: true, dir: 'auto' }));
    commentField.control.value = forum.commentDrafts.get(id) ?? '';
    commentField.control.addEventListener('input', () => {
        if (commentField.control.value)
            forum.commentDrafts.set(id, commentField.control.value);
        else
            forum.commentDrafts.delete(id);
    });
    const message = formMessage();
    const submit = h('button', { type: 'submit', class: 'button' }, 'Comment');
    const form = h('form', { id: 'comment-form', class: 'form comment-form', novalidate: true, 'aria-label': 'Add a comment' },
        message.node, commentField.node, h('div', { class: 'actions' }, submit));

    const comments = h('section', { class: 'comments', 'aria-labelledby': 'comments-title', hidden: true },
        h('h2', { id: 'comments-title' }, 'Comments'),
        empty, listEl, moreError, h('div', { class: 'load-more-row' }, more), form, announcer);

    const node = h('section', { class: 'post-page', 'aria-labelledby': 'post-title' },
        back,
        h('article', { class: 'post-full', 'aria-labelledby': 'post-title' }, heading, article),
        status,
        comments);

    function setCount(n) {
        count = n;
        details?.setCount(n);
    }

    /** Shows a comment once; counts it when the count read from the server cannot include it. */
    function addComment(comment, { live }) {
        if (live && !counted.has(comment.id) && !list.has(comment.id)) {
            counted.add(comment.id);
            setCount(count + 1);
        }
        const added = list.add(comment.id, commentItem(comment));
        empty.hidden = list.size !== 0;
        return added;
    }

    function setNextAfter(value) {
        nextAfter = value ?? null;
        more.hidden = nextAfter === null;
    }

    function notFound() {
        sent = false; // nothing to catch up on
        heading.textContent = 'Post not found';
        ctx.setTitle?.('Post not found');
        replace(status, h('p', { class: 'lead' }, 'There is no post with this address. It may have been mistyped.'),
            h('p', null, h('a', { href: '#/' }, 'See all posts')));
    }

    function failed(res) {
        if (res.status === 401) {
            ctx.onAuthLost();
            return;
        }
        heading.textContent = 'The post could not be loaded';
        replace(status, h('p', { class: 'form-error', role: 'alert' }, errorOf(res).message),
            h('button', {
                type: 'button', class: 'button button-quiet',
                onclick: () => { replace(status); loadFirst(); },
            }, 'Try again'));
    }

    /**
     * The post and its first comments; after a hello, the post again (its count) and the comments
     * after the last one shown.
     */
    async function loadFirst() {
        if (loadingFirst)
            return;
        loadingFirst = true;
        sent = true;
        refreshAgain = false;
        const after = loaded ? list.ids().at(-1) ?? 0 : 0;
        const wantComments = !loaded || nextAfter === null;
        const [postRes, commentsRes, cats] = await Promise.all([
            api('GET', `/api/posts/${id}`),
            wantComments ? api('GET', `/api/posts/${id}/comments?limit=${PAGE}${after ? `&after=${after}` : ''}`) : null,
            forum.categories(),
        ]);
        loadingFirst = false;
        if (gone)
            return;
        if (postRes.status === 404) {
            if (!loaded)
                notFound();
            return;
        }
        const commentsOk = !commentsRes || (commentsRes.status === 200 && Array.isArray(commentsRes.json?.comments));
        if (postRes.status !== 200 || !postRes.json?.post || !commentsOk) {
            if (!loaded)
                failed(postRes.status !== 200 ? postRes : commentsRes);
            return;
        }
        const post = postRes.json.post;
        if (!loaded) {
            heading.textContent = post.title;
            heading.dir = 'auto'; /* the user's text, in whichever direction it was written */
            ctx.setTitle?.(post.title);
            details = postDetails(post, categoryNames(cats.list));
            replace(article, details.node);
            comments.hidden = false;
            loaded = true;
        }
        counted.clear();
        setCount(post.comment_count);
        if (commentsRes) {
            commentsRes.json.comments.forEach((comment) => addComment(comment, { live: false }));
            setNextAfter(commentsRes.json.next_after);
        }
        early.splice(0).forEach(liveComment);
        empty.hidden = list.size !== 0;
        if (refreshAgain)
            loadFirst();
    }

    async function loadMore() {
        if (loadingMore || nextAfter === null)
            return;
        loadingMore = true;
        const page = await fetchMore({ button: more, errorNode: moreError, label: 'Load more comments', noun: 'comments',
            url: `/api/posts/${id}/comments?limit=${PAGE}&after=${nextAfter}`, key: 'comments', ctx, isGone: () => gone });
        loadingMore = false;
        if (!page)
            return;
        const hadFocus = document.activeElement === more;
        page.comments.forEach((comment) => addComment(comment, { live: false }));
        setNextAfter(page.next_after);
        if (hadFocus && more.hidden)
            commentField.control.focus();
    }

    onSubmit(form, submit, 'Sending…', async () => {
        message.clear();
        const body = commentField.control.value.trim();
        if (showErrors({ body: commentField }, body ? {} : { body: 'Write a comment first.' }))
            return;
        const res = await api('POST', `/api/posts/${id}/comments`, { body });
        if (res.status === 201 && res.json?.comment) {
            forum.commentDrafts.delete(id);
            if (gone)
                return;
            commentField.control.value = '';
            // shown even when older comments are still to load: you want to see what you sent
            addComment(res.json.comment, { live: true });
            return;
        }
        if (gone)
            return;
        if (res.status === 401) {
            ctx.onAuthLost();
            return;
        }
        const err = errorOf(res);
        if (res.status === 404)
            message.show('This post does not exist any more.');
        else if (err.field === 'body')
            showErrors({ body: commentField }, { body: fieldText('Comment', res.json.error.message, res.status) });
        else
            message.show(err.message);
    });

    function liveComment(comment) {
        if (nextAfter === null) {
            if (addComment(comment, { live: true }) && comment.author?.id !== ctx.user.id) {
                list.get(comment.id).node.classList.add('is-new');
                announcer.textContent = `New comment by ${comment.author?.nickname ?? 'someone'}`;
            }
        } else if (!counted.has(comment.id) && !list.has(comment.id)) {
            // not shown yet: "Load more comments" will bring it in its place
            counted.add(comment.id);
            setCount(count + 1);
        }
    }

    const unsubscribe = [
        forum.onComment((comment) => {
            if (comment.post_id !== id)
                return;
            if (loaded)
                liveComment(comment);
            else
                early.push(comment);
        }),
        forum.onHello(() => {
            if (!sent)
                return;
            if (loadingFirst)
                refreshAgain = true;
            else
                loadFirst();
        }),
    ];

    loadFirst();

    return {
        node,
        title: 'Post',
        destroy() {
            gone = true;
            unsubscribe.forEach((fn) => fn());
        },
    };
}
