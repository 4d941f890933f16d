# The input gate: text that is not honest UTF-8 (encoded surrogates, overlong forms, code points past
# U+10FFFF, NUL) is refused on every way in (JSON bodies, WebSocket frames, query values, path
# parameters) and stored nowhere; text already in the database goes out repaired, never as bytes a
# browser must fail a connection on; control characters follow one rule in posts, comments and chat;
# and routes match the raw path, so that %2F never becomes a separator.
use strict;
use warnings;
use lib '.';
use File::Temp qw(tempdir);
use Test::More;
use t::Util;

my $db_dir = tempdir(CLEANUP => 1);
my $db = "$db_dir/forum.db";
my $server = spawn_forumd(settings => "auth:\n  scrypt-n: 1024", db => $db);
my $base = $server->url;

# the bad sequences of the issue, raw (as bytes in the request) and as JSON escapes
my %raw = (
    'an encoded surrogate'  => "\xED\xA0\x80",
    'overlong NUL'          => "\xC0\x80",
    'overlong slash'        => "\xC0\xAF",
    'past U+10FFFF'         => "\xF4\x90\x80\x80",
    'a NUL byte'            => "\x00",
);
my %escaped = (
    'a lone low surrogate escape'   => '\udc00',
    'a lone high surrogate escape'  => '\ud800x',
    'a reversed surrogate pair'     => '\udc00\ud800',
    'a \u0000 escape'               => '\u0000',
);

# the first value the query gives (on SQLite, or PostgreSQL under make test-pg)
sub sql {
    my ($query) = @_;
    return db_value($db, $query);
}

sub strict_utf8 {
    my ($bytes) = @_;
    return utf8::decode(my $copy = $bytes) && $bytes !~ /\xED[\xA0-\xBF]|\xC0|\xC1|\xF4[\x90-\xBF]|[\xF5-\xFF]/;
}

my (%jar, %id);
for my $name (qw(ann bob)) {
    $jar{$name} = tempdir(CLEANUP => 1) . '/jar';
    my $res = curl_json('curl -s', 'POST', "$base/api/auth/register", cookie_jar => $jar{$name},
                        json => { nickname => $name, email => "$name\@example.org", password => 'password1', first_name => 'F',
                                  last_name => 'L', age => 33, gender => 'other' });
    die $res->{body} unless $res->{status} == 201;
    $id{$name} = $res->{json}{user}{id};
}

sub post_raw {
    my ($who, $path, $body) = @_;
    return curl_json('curl -s', 'POST', "$base$path", body => $body, headers => ['Content-Type: application/json'],
                     ($who ? (cookie_jar => $jar{$who}) : ()));
}

sub get {
    my ($who, $path, @curl) = @_;
    return curl_json(join(' ', 'curl -s', @curl), 'GET', "$base$path", cookie_jar => $jar{$who});
}

sub ws {
    my ($name, $query) = @_;
    my $ws = ws_connect('ws://127.0.0.1:' . $server->port . '/ws' . ($query // ''), cookie => cookie_of($jar{$name}));
    die "ws for $name: $ws->{error}" if $ws->{error};
    $ws->{hello} = $ws->wait_for('hello');
    return $ws;
}

my $post = post_raw('ann', '/api/posts', '{"title":"a post","body":"body","categories":["general"]}');
die $post->{body} unless $post->{status} == 201;
my $post_id = $post->{json}{post}{id};

my %counts = map { $_ => sql("SELECT count(*) FROM $_") } qw(users posts comments messages);

subtest 'JSON bodies: raw bytes that are not UTF-8 and escapes that are not text get 400 on every route' => sub {
    my @routes = (
        [undef, '/api/auth/register', sub {
            qq({"nickname":"eve","email":"eve\@example.org","password":"password1","first_name":"$_[0]","last_name":"L","age":33,"gender":"other"}) }],
        [undef, '/api/auth/register', sub {
            qq({"nickname":"eve","email":"eve\@example.org","password":"pass$_[0]word1","first_name":"F","last_name":"L","age":33,"gender":"other"}) }],
        [undef, '/api/auth/login', sub { qq({"login":"ann","password":"password1$_[0]x"}) }],
        ['ann', '/api/posts', sub { qq({"title":"t$_[0]","body":"b","categories":["general"]}) }],
        ['ann', '/api/posts', sub { qq({"title":"t","body":"b$_[0]","categories":["general"]}) }],
        ['ann', '/api/posts', sub { qq({"title":"t","body":"b","categories":["general"],"x$_[0]":1}) }],
        ['ann', "/api/posts/$post_id/comments", sub { qq({"body":"c$_[0]"}) }],
        ['ann', "/api/messages/$id{bob}/read", sub { qq({"up_to":1,"note":"$_[0]"}) }],
    );
    for my $r (@routes) {
        my ($who, $path, $make) = @$r;
        for my $case (sort keys %raw, sort keys %escaped) {
            my $bad = $raw{$case} // $escaped{$case};
            my $res = post_raw($who, $path, $make->($bad));
            is $res->{status}, 400, "$path, $case: 400"
                or diag $res->{body};
            is $res->{json}{error}{code}, 'bad_request', "$path, $case: bad_request";
        }
    }
    is sql("SELECT count(*) FROM $_"), $counts{$_}, "nothing was stored in $_" for qw(users posts comments);
};

subtest 'password1\u0000x no longer logs in as password1' => sub {
    my $res = post_raw(undef, '/api/auth/login', '{"login":"ann","password":"password1\u0000x"}');
    is $res->{status}, 400, 'refused before the password is compared';
    ok !grep({ /^set-cookie/i } split /\n/, $res->{raw_headers}), 'no session';
    $res = post_raw(undef, '/api/auth/login', '{"login":"ann","password":"password1"}');
    is $res->{status}, 200, 'the real password still works';
};

subtest 'query values and path parameters' => sub {
    for my $q ('category=%C0%AF', 'category=gen%00eral', 'category=%ED%A0%80', 'limit=1%00', 'before=%F4%90%80%80', 'x=%zz',
               '%C0%80=1') {
        my $res = get('ann', "/api/posts?$q");
        is $res->{status}, 400, "?$q: 400";
        is $res->{json}{error}{code}, 'bad_request', "?$q: bad_request";
    }
    for my $p ('%ED%A0%80', '1%00', '%C0%AF', '%F4%90%80%80', "1\xC0\xAF", '%zz', '%4') {
        my $res = get('ann', "/api/posts/$p");
        is $res->{status}, 400, "/api/posts/$p: 400";
        is $res->{json}{error}{field}, 'id', "/api/posts/$p: names the parameter";
    }
    my $res = get('ann', '/api/posts?limit=1%00');
    is $res->{json}{error}{field}, 'limit', 'the error names the parameter';
    $res = get('ann', '/api/posts?%C0%80=1');
    ok !exists $res->{json}{error}{field}, 'and names none when the name itself is not text';
    $res = get('ann', "/api/messages/$id{bob}?before=%ED%B0%80");
    is $res->{status}, 400, 'a chat query value: 400';

    # /ws refuses a query that is not text before the upgrade
    my $ws = ws_connect('ws://127.0.0.1:' . $server->port . '/ws?after=%C0%80', cookie => cookie_of($jar{ann}));
    is $ws->{error}, 400, '/ws?after=%C0%80: 400, no upgrade';
};

subtest 'routes match the raw path: %2F is not a separator, dot segments are refused' => sub {
    my $res = get('ann', "/api/posts/$post_id%2Fcomments");
    is $res->{status}, 404, "/api/posts/$post_id%2Fcomments is not the comments listing";
    ok !exists $res->{json}{comments}, 'no comments in the answer';
    $res = get('ann', "/api/posts/$post_id/comments");
    is $res->{status}, 200, 'the real listing still works';
    $res = get('ann', "/api/posts%2F$post_id");
    is $res->{status}, 404, 'an encoded separator between literals: no route';
    $res = get('ann', "/api/posts/$post_id");
    is $res->{status}, 200, 'the plain path still works';
    for my $p ('/api/posts/..', '/api/posts/%2e%2e', '/api/posts/%2E', "/api/posts/$post_id/../$post_id", '/api/posts/./1') {
        $res = get('ann', $p, '--path-as-is');
        is $res->{status}, 400, "$p: 400";
    }
    $res = get('ann', "/api/posts//$post_id", '--path-as-is');
    is $res->{status}, 404, 'an empty segment matches nothing';
};

subtest 'frames: raw bytes that are not UTF-8 close with 1007; escapes that are not text get an error, nothing stored' => sub {
    for my $case (sort keys %raw) {
        my $ws = ws('ann');
        $ws->send_bytes(qq({"type":"message.send","to":$id{bob},"client_id":"r$case","body":"x$raw{$case}y"}));
        my $closed = $ws->wait_closed(10);
        is $closed && $closed->[0], 1007, "$case in a text frame: closed with 1007";
    }
    my $ws = ws('ann');
    my $n = 0;
    for my $case (sort keys %escaped) {
        my $cid = 'e' . ++$n;
        $ws->send_bytes(qq({"type":"message.send","to":$id{bob},"client_id":"$cid","body":"x$escaped{$case}y"}));
        my $err = $ws->wait_for('error');
        is $err && $err->{code}, 'bad_request', "$case in a frame: an error";
        is $err && $err->{ref}, $cid, "$case: naming the frame's client_id";
    }
    $ws->send({ type => 'ping' });
    ok $ws->wait_for('pong'), 'and the connection stays open';
    is sql('SELECT count(*) FROM messages'), $counts{messages}, 'nothing was stored';
    my $res = get('ann', "/api/messages/$id{bob}");
    is scalar @{ $res->{json}{messages} }, 0, 'the conversation is empty';
};

subtest 'control characters: one rule, one 422, in posts, comments and chat' => sub {
    my $ws = ws('ann');
    my $n = 0;
    for my $c ("\x01", "\x1b", "\x7f", "\x{85}", "\x{9f}") {
        my $text = "a${c}b";
        my $name = sprintf 'U+%04X', ord $c;
        my $res = curl_json('curl -s', 'POST', "$base/api/posts", cookie_jar => $jar{ann},
                            json => { title => 'title', body => $text, categories => ['general'] });
        is_deeply [$res->{status}, $res->{json}{error}{field}], [422, 'body'], "$name in a post body: 422";
        $res = curl_json('curl -s', 'POST', "$base/api/posts", cookie_jar => $jar{ann},
                         json => { title => $text, body => 'body', categories => ['general'] });
        is_deeply [$res->{status}, $res->{json}{error}{field}], [422, 'title'], "$name in a title: 422";
        $res = curl_json('curl -s', 'POST', "$base/api/posts/$post_id/comments", cookie_jar => $jar{ann}, json => { body => $text });
        is_deeply [$res->{status}, $res->{json}{error}{field}], [422, 'body'], "$name in a comment: 422";
        my $cid = 'ctl' . ++$n;
        $ws->send({ type => 'message.send', to => $id{bob}, client_id => $cid, body => $text });
        my $err = $ws->wait_for('error');
        is_deeply [$err && $err->{code}, $err && $err->{ref}], ['validation', $cid], "$name in a private message: validation";
        like $err && $err->{message}, qr/control/, 'with the same reason';
    }
    # multi-line text keeps its tabs and newlines; a title is one line
    my $res = curl_json('curl -s', 'POST', "$base/api/posts", cookie_jar => $jar{ann},
                        json => { title => "two\nlines", body => 'body', categories => ['general'] });
    is_deeply [$res->{status}, $res->{json}{error}{field}], [422, 'title'], 'a newline in a title: 422';
    $res = curl_json('curl -s', 'POST', "$base/api/posts", cookie_jar => $jar{ann},
                     json => { title => "t\x{2028}t", body => 'body', categories => ['general'] });
    is $res->{status}, 422, 'so is a line separator';
    $res = curl_json('curl -s', 'POST', "$base/api/posts/$post_id/comments", cookie_jar => $jar{ann}, json => { body => "a\n\tb\r\nc" });
    is $res->{status}, 201, 'a comment may hold tabs and newlines';
    $ws->send({ type => 'message.send', to => $id{bob}, client_id => 'ml', body => "a\n\tb" });
    is $ws->wait_for('message')->{message}{body}, "a\n\tb", 'so may a private message';
    $res = curl_json('curl -s', 'POST', "$base/api/auth/register", cookie_jar => tempdir(CLEANUP => 1) . '/jar',
                     json => { nickname => 'zoe', email => 'zoe@example.org', password => 'password1', first_name => "Zo\ne",
                               last_name => 'L', age => 33, gender => 'other' });
    is_deeply [$res->{status}, $res->{json}{error}{field}], [422, 'first_name'], 'a name is one line';
    is sql("SELECT count(*) FROM posts"), $counts{posts}, 'no post was stored';
    is sql("SELECT count(*) FROM messages WHERE client_id LIKE 'ctl%'"), 0, 'no message was stored';
};

subtest 'text stored before the gate goes out as U+FFFD, never as bytes that are not UTF-8' => sub {
    plan skip_all => 'SQLite only: a PostgreSQL UTF8 database refuses text that is not UTF-8, so none can be there'
        unless backend() eq 'sqlite';
    # written behind the server's back, as an older forumd (or another program) could have
    sql("INSERT INTO posts (author_id, title, body, created_at) VALUES ($id{ann}, CAST(X'61C0AF62' AS TEXT), "
        . "CAST(X'EDA080' AS TEXT), '2026-11-30T00:00:00.000Z')");
    my $old = sql('SELECT max(id) FROM posts');
    my $res = curl_json('curl -s', 'GET', "$base/api/posts/$old", cookie_jar => $jar{ann});
    is $res->{status}, 200, 'the post is served';
    ok strict_utf8($res->{body}), 'as strict UTF-8';
    is $res->{json}{post}{title}, "a\x{FFFD}\x{FFFD}b", 'each bad byte of the title is U+FFFD';
    is $res->{json}{post}{body}, "\x{FFFD}" x 3, 'and of the body';

    sql("INSERT INTO messages (sender_id, recipient_id, body, client_id, created_at) VALUES ($id{bob}, $id{ann}, "
        . "CAST(X'68F4908080' AS TEXT), 'old', '2026-11-30T00:00:00.000Z')");
    my $mid = sql('SELECT max(id) FROM messages');
    sql("INSERT INTO message_index (user_id, message_id) VALUES ($id{ann}, $mid), ($id{bob}, $mid)");
    my $ws = ws('ann', '?after=0');
    my @got;
    while (my $m = $ws->wait_for('message', 5)) {
        push @got, $m->{message};
        last if $m->{message}{id} == $mid;
    }
    is $got[-1] && $got[-1]{body}, "h\x{FFFD}\x{FFFD}\x{FFFD}\x{FFFD}", 'the replayed message arrives repaired';
    $ws->send({ type => 'ping' });
    ok $ws->wait_for('pong'), 'and the connection lives on';
    ok !$ws->{closed}, 'never closed';
    $res = get('ann', "/api/messages/$id{bob}");
    ok strict_utf8($res->{body}), 'the history is strict UTF-8 too';
    is $res->{json}{messages}[-1]{body}, "h\x{FFFD}\x{FFFD}\x{FFFD}\x{FFFD}", 'repaired the same way';
};

done_testing;
