# Posts, categories and comments (plugins posts, comments): every route and rule, pagination without
# gaps or repeats while posts arrive, the category filter, 404s, live events, and index use.
use strict;
use warnings;
use lib '.';
use File::Temp qw(tempdir);
use Test::More;
use t::Util;

my $server = spawn_forumd(settings => "auth:\n  scrypt-n: 1024");

sub register {
    my ($name) = @_;
    my $jar = tempdir(CLEANUP => 1) . '/jar';
    my $res = curl_json('curl -s', 'POST', $server->url . '/api/auth/register', cookie_jar => $jar,
                        json => { nickname => $name, email => "$name\@example.org", password => 'password1', first_name => 'F',
                                  last_name => 'L', age => 40, gender => 'other' });
    die "register $name: $res->{body}" unless $res->{status} == 201;
    return ($jar, $res->{json}{user});
}

my ($jar, $me) = register('poster');
my ($jar2, $other) = register('reader');

sub api {
    my ($method, $path, %opts) = @_;
    my $curl = delete $opts{curl} // 'curl -s';
    return curl_json($curl, $method, ($opts{base} // $server->url) . $path, cookie_jar => $opts{jar} // $jar,
                     (exists $opts{json} ? (json => $opts{json}) : ()));
}

run_with_curl($server, sub {
    my ($proto, $base, $curl) = @_;
    my $res = api('GET', '/api/categories', curl => $curl, base => $base);
    is $res->{status}, 200, 'categories';
    is_deeply [map { $_->{slug} } @{ $res->{json}{categories} }], [qw(general news discussion technology sports entertainment)],
        'the six default categories, in order';
    ok defined $res->{json}{categories}[0]{name} && defined $res->{json}{categories}[0]{post_count}, 'with name and post_count';

    $res = api('POST', '/api/posts', curl => $curl, base => $base,
               json => { title => "  A post over $proto  ", body => "Line one\nLine two", categories => ['news', 'general'] });
    is $res->{status}, 201, 'create a post';
    my $post = $res->{json}{post};
    is $post->{title}, "A post over $proto", 'title trimmed';
    is $post->{body}, "Line one\nLine two", 'body kept with its newline';
    is_deeply $post->{categories}, ['general', 'news'], 'categories in their order';
    is_deeply $post->{author}, { id => $me->{id}, nickname => 'poster' }, 'the author is the session user';
    is $post->{comment_count}, 0, 'no comments yet';
    like $post->{created_at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'created_at';

    $res = api('GET', "/api/posts/$post->{id}", curl => $curl, base => $base, jar => $jar2);
    is_deeply $res->{json}{post}, $post, 'another user reads the same post';

    $res = api('POST', "/api/posts/$post->{id}/comments", curl => $curl, base => $base, jar => $jar2, json => { body => ' Nice! ' });
    is $res->{status}, 201, 'comment on it';
    is_deeply [@{ $res->{json}{comment} }{qw(post_id body)}], [$post->{id}, 'Nice!'], 'the comment, trimmed';
    is_deeply $res->{json}{comment}{author}, { id => $other->{id}, nickname => 'reader' }, 'by its author';
    $res = api('GET', "/api/posts/$post->{id}", curl => $curl, base => $base);
    is $res->{json}{post}{comment_count}, 1, 'the post counts it';
});

subtest 'validation of posts' => sub {
    my @cases = (
        [{ body => 'b', categories => ['news'] }, 422, 'title'],
        [{ title => '   ', body => 'b', categories => ['news'] }, 422, 'title'],
        [{ title => 'x' x 201, body => 'b', categories => ['news'] }, 422, 'title'],
        [{ title => 5, body => 'b', categories => ['news'] }, 400, 'title'],
        [{ title => 't', categories => ['news'] }, 422, 'body'],
        [{ title => 't', body => 'x' x 20001, categories => ['news'] }, 422, 'body'],
        [{ title => 't', body => 'b' }, 422, 'categories'],
        [{ title => 't', body => 'b', categories => [] }, 422, 'categories'],
        [{ title => 't', body => 'b', categories => [qw(news general sports technology)] }, 422, 'categories'],
        [{ title => 't', body => 'b', categories => ['nope'] }, 422, 'categories'],
        [{ title => 't', body => 'b', categories => ['news', 'news'] }, 422, 'categories'],
        [{ title => 't', body => 'b', categories => 'news' }, 400, 'categories'],
        [{ title => 't', body => 'b', categories => [1] }, 400, 'categories'],
    );
    my $before = api('GET', '/api/categories')->{json}{categories};
    my $count = scalar @{ api('GET', '/api/posts?limit=50')->{json}{posts} };
    for my $case (@cases) {
        my $res = api('POST', '/api/posts', json => $case->[0]);
        is $res->{status}, $case->[1], "$case->[2]: $case->[1]";
        is $res->{json}{error}{field}, $case->[2], '  names the field';
    }
    my $res = api('POST', '/api/posts', json => { title => 'x' x 200, body => "\x{e9}" x 20000, categories => [qw(news general sports)] });
    is $res->{status}, 201, 'the limits themselves (200, 20000 characters, three categories) are accepted';
    is scalar @{ api('GET', '/api/posts?limit=50')->{json}{posts} }, $count + 1, 'only that one was stored';
    my $after = api('GET', '/api/categories')->{json}{categories};
    my %added = map { $_ => 1 } qw(news general sports);
    for my $i (0 .. 5) {
        my $slug = $after->[$i]{slug};
        is $after->[$i]{post_count}, $before->[$i]{post_count} + ($added{$slug} ? 1 : 0), "post_count of $slug";
    }
    $res = curl_json('curl -s', 'POST', $server->url . '/api/posts', json => { title => 't', body => 'b', categories => ['news'] });
    is $res->{status}, 401, 'creating needs a session';
    $res = curl_json('curl -s', 'GET', $server->url . '/api/posts');
    is $res->{status}, 401, 'so does reading';
};

subtest 'query parameters out of range are 400' => sub {
    for my $q ('limit=0', 'limit=51', 'limit=abc', 'limit=-1', 'before=0', 'before=x', 'category=nope', 'limit=', 'limit=1e3') {
        my $res = api('GET', "/api/posts?$q");
        is $res->{status}, 400, "/api/posts?$q: 400";
        is $res->{json}{error}{code}, 'bad_request', '  bad_request';
    }
    for my $q ('limit=0', 'limit=101', 'after=-1', 'after=z') {
        is api('GET', "/api/posts/1/comments?$q")->{status}, 400, "/api/posts/1/comments?$q: 400";
    }
    is api('GET', '/api/posts?limit=50&before=999999999')->{status}, 200, 'the bounds themselves are fine';
};

subtest '404s' => sub {
    is api('GET', '/api/posts/999999')->{status}, 404, 'a missing post';
    is api('GET', '/api/posts/abc')->{status}, 404, 'a post id that is not a number';
    is api('GET', '/api/posts/0')->{status}, 404, 'post 0';
    is api('GET', '/api/posts/999999/comments')->{status}, 404, 'comments of a missing post';
    my $count = api('GET', '/api/posts/1')->{json}{post}{comment_count};
    my $res = api('POST', '/api/posts/999999/comments', json => { body => 'lost' });
    is $res->{status}, 404, 'a comment on a missing post';
    is $res->{json}{error}{code}, 'not_found', '  not_found';
    $res = api('POST', '/api/posts/1/comments', json => { body => '' });
    is $res->{status}, 422, 'an empty comment';
    $res = api('POST', '/api/posts/1/comments', json => { body => 'x' x 5001 });
    is $res->{status}, 422, 'a comment over 5000 characters';
    is api('GET', '/api/posts/1')->{json}{post}{comment_count}, $count, 'none of them was stored';
};

subtest 'pagination: no gaps, no repeats, while new posts arrive' => sub {
    my %mine;
    for my $i (1 .. 45) {
        my $cat = $i % 3 == 0 ? 'sports' : 'technology';
        my $res = api('POST', '/api/posts', json => { title => "page test $i", body => 'b', categories => [$cat] });
        $mine{ $res->{json}{post}{id} } = $cat;
    }
    my @all = sort { $b <=> $a } keys %mine;
    my (@seen, $before);
    my $pages = 0;
    while (1) {
        my $res = api('GET', '/api/posts?limit=7' . (defined $before ? "&before=$before" : ''));
        is $res->{status}, 200, "page $pages" if $pages < 2;
        push @seen, map { $_->{id} } @{ $res->{json}{posts} };
        # a newcomer while paging must not shift the pages
        api('POST', '/api/posts', json => { title => 'newcomer', body => 'b', categories => ['news'] }) if $pages == 1;
        $before = $res->{json}{next_before};
        last unless defined $before;
        last if ++$pages > 100;
    }
    my @seen_mine = grep { $mine{$_} } @seen;
    is_deeply \@seen_mine, \@all, 'every post exactly once, newest first';
    my %dup;
    ok !grep({ $dup{$_}++ } @seen), 'no id twice';
    is_deeply \@seen, [sort { $b <=> $a } @seen], 'strictly newest first';

    my (@sports, $b2);
    while (1) {
        my $res = api('GET', '/api/posts?category=sports&limit=4' . (defined $b2 ? "&before=$b2" : ''));
        for my $p (@{ $res->{json}{posts} }) {
            push @sports, $p->{id};
            ok grep({ $_ eq 'sports' } @{ $p->{categories} }), "post $p->{id} is in sports" if @sports <= 3;
        }
        $b2 = $res->{json}{next_before};
        last unless defined $b2;
    }
    is_deeply [grep { $mine{$_} } @sports], [grep { $mine{$_} eq 'sports' } @all], 'the filter walks only its category, completely';

    my $last = api('GET', "/api/posts?limit=1&before=$all[-1]");
    ok !grep({ $mine{ $_->{id} } } @{ $last->{json}{posts} }), 'before the oldest: none of them';
};

subtest 'a feed page answered again shows every change since' => sub {
    my $page = sub { api('GET', '/api/posts?limit=3' . ($_[0] // ''))->{json} };
    my $first = $page->();
    is_deeply $page->(), $first, 'the same page twice, nothing changed';

    my $new = api('POST', '/api/posts', json => { title => 'fresh', body => 'b', categories => ['news'] })->{json}{post};
    is $page->()->{posts}[0]{id}, $new->{id}, 'a new post leads the next answer';
    my $news = api('GET', '/api/posts?category=news&limit=3')->{json};
    is $news->{posts}[0]{id}, $new->{id}, 'and the next answer of its category';

    my $c = api('POST', "/api/posts/$new->{id}/comments", json => { body => 'first!' });
    is $c->{status}, 201, 'a comment';
    is $page->()->{posts}[0]{comment_count}, 1, 'the page shows the comment count the comment trigger moved';
    is api('GET', '/api/posts?category=news&limit=3')->{json}{posts}[0]{comment_count}, 1, 'so does the category page';

    # another process writing to the database (an operator's sqlite3 or psql) is seen on the next answer too
    $server->db_query("UPDATE posts SET title = 'edited outside' WHERE id = ?", $new->{id});
    is $page->()->{posts}[0]{title}, 'edited outside', 'a change committed by another connection';
    my $before = $first->{next_before};
    is_deeply $page->("&before=$before"), $page->("&before=$before"), 'an older page, twice';
};

subtest 'comments: oldest first, pages without gaps' => sub {
    my $post = api('POST', '/api/posts', json => { title => 'talk', body => 'b', categories => ['discussion'] })->{json}{post};
    my @ids = map { api('POST', "/api/posts/$post->{id}/comments", json => { body => "c$_" })->{json}{comment}{id} } 1 .. 23;
    my (@seen, $after);
    while (1) {
        my $res = api('GET', "/api/posts/$post->{id}/comments?limit=5" . (defined $after ? "&after=$after" : ''));
        push @seen, map { $_->{id} } @{ $res->{json}{comments} };
        $after = $res->{json}{next_after};
        last unless defined $after;
    }
    is_deeply \@seen, \@ids, 'every comment once, oldest first';
    my $res = api('GET', "/api/posts/$post->{id}/comments");
    is scalar @{ $res->{json}{comments} }, 23, 'default limit 50 holds them all';
    is $res->{json}{next_after}, undef, 'and says there is no more';
    is api('GET', "/api/posts/$post->{id}")->{json}{post}{comment_count}, 23, 'comment_count';
};

subtest 'post.created and comment.created reach every connected client, after commit' => sub {
    my $ws = ws_connect('ws://127.0.0.1:' . $server->port . '/ws', cookie => cookie_of($jar2));
    $ws->wait_for('hello');
    my $post = api('POST', '/api/posts', json => { title => 'live', body => 'now', categories => ['general'] })->{json}{post};
    my $ev = $ws->wait_for('post.created');
    is_deeply $ev->{post}, $post, 'post.created carries the post as stored';
    my $comment = api('POST', "/api/posts/$post->{id}/comments", json => { body => 'live comment' })->{json}{comment};
    $ev = $ws->wait_for('comment.created');
    is_deeply $ev->{comment}, $comment, 'comment.created carries the comment';
    api('POST', '/api/posts', json => { title => '', body => 'b', categories => ['general'] });
    is scalar $ws->collect('post.created', 0.5), 0, 'a refused post publishes nothing';
    $ws->close;
};

subtest 'listing a page uses the indexes (cost independent of the number of posts)' => sub {
    plan skip_all => 'SQLite only: these are the plans of SQLite\'s query planner (PostgreSQL\'s depend on its statistics)'
        unless $server->backend eq 'sqlite';
    my $plan = sub {
        my $sql = shift;
        return join "\n", `sqlite3 -readonly '$server->{db}' "EXPLAIN QUERY PLAN $sql"`;
    };
    my $feed = $plan->('SELECT p.id FROM posts p JOIN users u ON u.id = p.author_id WHERE p.id < 100 ORDER BY p.id DESC LIMIT 21');
    like $feed, qr/SEARCH p USING INTEGER PRIMARY KEY \(rowid<\?\)/, 'the feed walks the posts primary key';
    unlike $feed, qr/USE TEMP B-TREE|SCAN p\b/, 'without sorting or scanning';
    my $cat = $plan->('SELECT p.id FROM post_categories pc JOIN posts p ON p.id = pc.post_id JOIN users u ON u.id = p.author_id '
                      . 'WHERE pc.category_id = 2 AND pc.post_id < 100 ORDER BY pc.post_id DESC LIMIT 21');
    like $cat, qr/SEARCH pc USING PRIMARY KEY \(category_id=\? AND post_id<\?\)/, 'the filter walks (category_id, post_id)';
    unlike $cat, qr/USE TEMP B-TREE/, 'without sorting';
    my $com = $plan->('SELECT c.id FROM comments c JOIN users u ON u.id = c.author_id WHERE c.post_id = 1 AND c.id > 0 ORDER BY c.id LIMIT 51');
    like $com, qr/SEARCH c USING INDEX comments_post \(post_id=\? AND (?:rowid|id)>\?\)/, 'comments walk (post_id, id)';
    unlike $com, qr/USE TEMP B-TREE/, 'without sorting';
};

is $server->stop, 0, 'forumd exits 0';
done_testing;
