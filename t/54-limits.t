# Limits that must hold under load: failed logins are charged when they are decided, so a burst in
# flight cannot pass the limit (per account, whatever form of its login, and per address), a success
# or a refused hash gives its attempt back, and a flood of other keys cannot reset an account; the
# users list is paged with a cursor and a prefix search whose cost does not grow with the number of
# accounts; read marks recount without walking every message.
use strict;
use warnings;
use lib '.';
use File::Temp qw(tempdir);
use Test::More;
use t::Util;

# Runs one curl per entry at once, from the given source address; returns the status codes.
sub concurrent_logins {
    my ($server, @tries) = @_;
    my $dir = tempdir(CLEANUP => 1);
    my @pids;
    for my $i (0 .. $#tries) {
        my ($addr, $login, $password) = @{ $tries[$i] };
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            open STDOUT, '>', "$dir/$i" or die $!;
            exec 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--interface', $addr, '-H', 'Content-Type: application/json',
                '--data', json_encode({ login => $login, password => $password }), $server->url . '/api/auth/login';
            die "exec: $!";
        }
        push @pids, $pid;
    }
    waitpid $_, 0 for @pids;
    return map { slurp("$dir/$_") + 0 } 0 .. $#tries;
}

sub count_of { my ($code, @codes) = @_; scalar grep { $_ == $code } @codes }

sub login_from {
    my ($server, $addr, $login, $password) = @_;
    return curl_json("curl -s --interface $addr", 'POST', $server->url . '/api/auth/login',
                     json => { login => $login, password => $password })->{status};
}

subtest 'logins: a burst in flight is charged before it is hashed' => sub {
    # one hashing thread at the default cost: a burst waits in the queue, where the old code did not count it
    my $server = spawn_forumd(settings => "auth:\n  hash-workers: 1\n  hash-queue: 100\n  login-limit: 10\n  login-window: 3600");
    my $reg = { nickname => 'target', email => 'target@example.org', password => 'password1', first_name => 'T', last_name => 'T',
                age => 30, gender => 'other' };
    is curl_json('curl -s', 'POST', $server->url . '/api/auth/register', json => $reg)->{status}, 201, 'an account';

    my @codes = concurrent_logins($server, map { ["127.0.1.$_", 'target', "wrong $_"] } 1 .. 40);
    my ($wrong, $limited) = (count_of(401, @codes), count_of(429, @codes));
    ok $wrong >= 1 && $wrong <= 10, "40 wrong passwords at once from 40 addresses: at most 10 answered 401 ($wrong)";
    is $wrong + $limited, 40, "the others 429 ($limited)";
    is login_from($server, '127.0.1.99', 'target', 'password1'), 429, 'the account is limited, even for the right password';

    @codes = concurrent_logins($server, map { ['127.0.2.1', "ghost$_", 'whatever1'] } 1 .. 40);
    ($wrong, $limited) = (count_of(401, @codes), count_of(429, @codes));
    ok $wrong >= 1 && $wrong <= 10, "40 failures at once from one address: at most 10 answered 401 ($wrong)";
    is $wrong + $limited, 40, "the others 429 ($limited)";
    is login_from($server, '127.0.2.1', 'someone', 'whatever1'), 429, 'the address is limited for any account';
    is $server->stop, 0, 'forumd exits 0';
};

subtest 'logins: a success gives its attempt back' => sub {
    my $server = spawn_forumd(settings => "auth:\n  scrypt-n: 1024\n  login-limit: 3\n  login-window: 600");
    my $reg = { nickname => 'regular', email => 'regular@example.org', password => 'password1', first_name => 'R', last_name => 'R',
                age => 30, gender => 'other' };
    curl_json('curl -s', 'POST', $server->url . '/api/auth/register', json => $reg);
    is login_from($server, '127.0.3.1', 'regular', 'password1'), 200, "success $_" for 1 .. 8;
    is login_from($server, '127.0.3.1', 'regular', 'nope nope'), 401, "failure $_ after them" for 1 .. 3;
    is login_from($server, '127.0.3.1', 'regular', 'nope nope'), 429, 'only failures counted: the fourth is 429';
    my @codes = concurrent_logins($server, map { ["127.0.3.$_", 'Regular', 'password1'] } 10 .. 19);
    is count_of(429, @codes), 10, 'while the account is limited, the right password waits too';
    is $server->stop, 0, 'forumd exits 0';
};

subtest 'logins: an attempt refused for a full hashing queue (503) is given back' => sub {
    my $server = spawn_forumd(settings => "auth:\n  scrypt-n: 131072\n  hash-workers: 1\n  hash-queue: 0\n  login-limit: 3\n"
                                        . "  login-window: 600");
    my @codes = concurrent_logins($server, map { ['127.0.4.1', 'nobody', 'whatever1'] } 1 .. 8);
    my $busy = count_of(503, @codes);
    ok $busy >= 1, "a burst past the queue: 503 ($busy)";
    is count_of(401, @codes) + $busy, 8, 'the rest answered 401';
    my $spent = count_of(401, @codes);
    is login_from($server, '127.0.4.1', 'nobody', 'whatever1'), 401, "failure $_ after the burst" for $spent + 1 .. 3;
    is login_from($server, '127.0.4.1', 'nobody', 'whatever1'), 429, 'and only then 429: the 503s took nothing';
    is $server->stop, 0, 'forumd exits 0';
};


subtest 'logins: every form of an account\'s login spends the same budget' => sub {
    # nickname, email and other cases find the same account: they must not be separate buckets
    my $server = spawn_forumd(settings => "auth:\n  scrypt-n: 1024\n  login-limit: 10\n  login-window: 600");
    my $reg = { nickname => 'Shared', email => 'shared@example.org', password => 'password1', first_name => 'S', last_name => 'S',
                age => 30, gender => 'other' };
    is curl_json('curl -s', 'POST', $server->url . '/api/auth/register', json => $reg)->{status}, 201, 'an account';
    my @forms = ('shared', 'shared@example.org', 'SHARED', 'Shared@Example.ORG');
    # a new source address each time: only the account's budget can stop these
    is login_from($server, "127.0.5.$_", $forms[$_ % @forms], 'wrong password'), 401, "failure $_ as $forms[$_ % @forms]" for 1 .. 10;
    is login_from($server, "127.0.5.$_", $forms[$_ % @forms], 'wrong password'), 429, "attempt $_ as $forms[$_ % @forms]: 429"
        for 11 .. 14;
    is login_from($server, '127.0.5.50', 'SHARED@EXAMPLE.ORG', 'password1'), 429, 'the right password waits too, in any form';
    is $server->stop, 0, 'forumd exits 0';
};

subtest 'logins: unknown accounts from many addresses neither evict nor spend a real account\'s budget' => sub {
    # tables of 16 entries: the flood below is many times that
    my $server = spawn_forumd(settings => "auth:\n  scrypt-n: 1024\n  login-limit: 3\n  login-window: 600\n  limiter-entries: 16");
    my $reg = { nickname => 'victim', email => 'victim@example.org', password => 'password1', first_name => 'V', last_name => 'V',
                age => 30, gender => 'other' };
    is curl_json('curl -s', 'POST', $server->url . '/api/auth/register', json => $reg)->{status}, 201, 'an account';
    is login_from($server, "127.0.6.$_", 'victim', 'wrong password'), 401, "failure $_" for 1 .. 3;
    is login_from($server, '127.0.6.4', 'victim', 'wrong password'), 429, 'the account is limited';
    for my $round (0 .. 3) {
        my @codes = concurrent_logins($server, map { ["127.0." . (70 + $round) . ".$_", "ghost$round-$_", 'whatever1'] } 1 .. 20);
        is count_of(401, @codes), 20, "20 unknown accounts from 20 addresses (round $round): 401, no account budget spent";
    }
    # an unknown login has no account to charge: only its address pays (the answer is 401 as for a wrong password)
    is login_from($server, "127.0.8.$_", 'nobody', 'whatever1'), 401, "unknown account from a new address: 401 ($_)" for 1 .. 5;
    is login_from($server, '127.0.6.5', 'victim', 'wrong password'), 429, 'after the flood, the account is still limited';
    is login_from($server, '127.0.6.6', 'victim@example.org', 'password1'), 429, 'even for the right password';
    is $server->stop, 0, 'forumd exits 0';
};


# --- the users list: pages, prefix search, bounded cost ---

my $db_dir = tempdir(CLEANUP => 1);
my $server = spawn_forumd(settings => "auth:\n  scrypt-n: 1024", db => "$db_dir/forum.db");
my (%jar, %id);

sub register {
    my ($name) = @_;
    $jar{$name} = tempdir(CLEANUP => 1) . '/jar';
    (my $mail = lc $name) =~ s/[^a-z0-9]/x/g;
    my $res = curl_json('curl -s', 'POST', $server->url . '/api/auth/register', cookie_jar => $jar{$name},
                        json => { nickname => $name, email => "$mail.$name\@example.org", password => 'password1', first_name => 'F',
                                  last_name => 'L', age => 33, gender => 'other' });
    die $res->{body} unless $res->{status} == 201;
    $id{$name} = $res->{json}{user}{id};
}

sub api {
    my ($name, $method, $path, $json) = @_;
    return curl_json('curl -s', $method, $server->url . $path, cookie_jar => $jar{$name}, (defined $json ? (json => $json) : ()));
}

sub ws {
    my ($name) = @_;
    my $ws = ws_connect('ws://127.0.0.1:' . $server->port . '/ws', cookie => cookie_of($jar{$name}));
    die "ws for $name: $ws->{error}" if $ws->{error};
    $ws->wait_for('hello');
    return $ws;
}

my $cid = 0;
# Sends one message and waits for its acknowledgement; returns the message.
sub message {
    my ($ws, $to, $body) = @_;
    my $client_id = 'c' . ++$cid;
    $ws->send({ type => 'message.send', to => $id{$to}, body => $body, client_id => $client_id });
    while (my $f = $ws->wait_for('message')) {
        return $f->{message} if ($f->{message}{client_id} // '') eq $client_id;
    }
    die "no acknowledgement for $client_id";
}

# Follows `next` from the first page; returns the users in order and the pages' sizes.
sub all_pages {
    my ($who, $query) = @_;
    my (@users, @sizes, %cursors);
    my $path = "/api/users?$query";
    for (1 .. 1000) {
        my $res = api($who, 'GET', $path);
        die "GET $path: $res->{status} $res->{body}" unless $res->{status} == 200;
        push @users, @{ $res->{json}{users} };
        push @sizes, scalar @{ $res->{json}{users} };
        my $next = $res->{json}{next};
        return (\@users, \@sizes) unless defined $next;
        die "cursor $next came twice" if $cursors{$next}++;
        $path = "/api/users?$query&after=$next";
    }
    die 'no end';
}

sub names { [map { $_->{nickname} } @{ $_[0] }] }

my @names = qw(myself Alpha alpine ALPS a_b a_c abc Ax.y beta Bravo b-side Carla carl charlie delta Echo
               foxtrot Golf hotel INDIA juliet kilo Lima mike November oscar Papa quebec Romeo sierra Tango);
register($_) for @names;

subtest 'the users list is paged: every user exactly once, in the order of API.md' => sub {
    # conversations of me: oldest to newest; and one between others that me must not see as its own
    my $w = ws('myself');
    my @partners = qw(delta Alpha sierra a_b Carla);
    message($w, $_, "hi $_") for @partners;
    my $o = ws('kilo');
    message($o, 'mike', 'not about me');
    my $from_beta = ws('beta');
    message($from_beta, 'myself', 'beta writes first');
    push @partners, 'beta';
    $_->close for $w, $o, $from_beta;

    my @others = sort { lc $a cmp lc $b } grep { my $n = $_; $n ne 'myself' && !grep { $_ eq $n } @partners } @names;
    my @expected = ((reverse @partners), @others);
    my ($one) = all_pages('myself', 'limit=200');
    is_deeply names($one), \@expected, 'one page: conversations newest first, then the others A to Z (case-insensitive)';
    my ($users, $sizes) = all_pages('myself', 'limit=2');
    is_deeply names($users), \@expected, 'pages of 2 cover everyone exactly once, in the same order';
    ok !(grep { $_ > 2 } @$sizes), 'no page holds more than its limit';
    is scalar @$sizes, int((@expected + 1) / 2), 'full pages, the last one saying there is no more';
    ($users) = all_pages('myself', 'limit=1');
    is_deeply names($users), \@expected, 'and pages of 1';
    my $first = api('myself', 'GET', '/api/users')->{json};
    is scalar @{ $first->{users} }, @names - 1, 'limit defaults to 50: everyone on one page';
    is $first->{next}, undef, 'next is null on the last page';
    my ($beta) = grep { $_->{nickname} eq 'beta' } @$one;
    is $beta->{unread}, 1, 'unread counts on the page';
    ok defined $beta->{last_message_id} && defined $beta->{last_message_at}, 'and the last message';
    my ($golf) = grep { $_->{nickname} eq 'Golf' } @$one;
    is_deeply [@$golf{qw(last_message_at last_message_id unread)}], [undef, undef, 0], 'someone without messages';
};

subtest 'q keeps the nicknames that start with it, case-insensitive; _ and % are themselves' => sub {
    my $q = sub { names((all_pages('myself', "limit=2&q=$_[0]"))[0]) };
    is_deeply $q->('AL'), [qw(Alpha alpine ALPS)], 'AL: Alpha (a conversation) first, then alpine, ALPS';
    is_deeply $q->('aLpI'), ['alpine'], 'mixed case';
    is_deeply $q->('a_'), [qw(a_b a_c)], 'a_: an underscore, not any character (abc, Ax.y are left out)';
    is_deeply $q->('a%25'), [], 'a%: a percent sign, not anything';
    is_deeply $q->('%25'), [], '% alone matches nothing';
    is_deeply $q->('_'), [], '_ alone matches nothing';
    is_deeply $q->('b-'), ['b-side'], 'a hyphen';
    is_deeply $q->('Ax.'), ['Ax.y'], 'a dot';
    is_deeply $q->('myself'), [], 'yourself is never listed';
    is_deeply $q->('zzz'), [], 'no match: an empty list';
    is_deeply $q->('%C3%A9'), [], 'non-ASCII: no match, no error';
    my ($all) = all_pages('myself', 'limit=3&q=');
    is scalar @$all, @names - 1, 'an empty q keeps everyone';
};

subtest 'non-ASCII nicknames (written by an operator) match byte for byte, ASCII letters folded' => sub {
    $server->db_query("INSERT INTO users (nickname, email, password_hash, first_name, last_name, age, gender, created_at) VALUES "
                      . "('\x{c3}\x{89}lodie', 'e1\@example.org', 'x', 'E', 'L', 20, 'other', '2026-01-01T00:00:00.000Z'),"
                      . "('\x{c3}\x{a9}lan', 'e2\@example.org', 'x', 'E', 'L', 20, 'other', '2026-01-01T00:00:00.000Z'),"
                      . "('100%real', 'e3\@example.org', 'x', 'E', 'L', 20, 'other', '2026-01-01T00:00:00.000Z')");
    my $q = sub { names((all_pages('myself', "limit=1&q=$_[0]"))[0]) };
    is_deeply $q->('%C3%A9'), ["\x{e9}lan"], 'é finds élan, not Élodie (only ASCII letters fold, as SQLite NOCASE)';
    is_deeply $q->('%C3%89L'), ["\x{c9}lodie"], 'ÉL finds Élodie';
    is_deeply $q->('100%25'), ['100%real'], '100% finds 100%real';
    is_deeply $q->('1'), ['100%real'], 'a digit';
    my $all = names((all_pages('myself', 'limit=4'))[0]);
    is_deeply [grep { /^(?:100%real|\x{c9}lodie|\x{e9}lan)$/ } @$all], ['100%real', "\x{c9}lodie", "\x{e9}lan"],
        'they take their place in the nickname order (bytes after ASCII)';
    is scalar @$all, @names - 1 + 3, 'everyone once';
};

subtest 'a bad cursor or limit is a 400' => sub {
    my $b64 = sub { my $s = MIME::Base64::encode_base64url($_[0]); $s };
    require MIME::Base64;
    for my $bad ('zzz', '!!', 'MTox=', 'Mw', $b64->('3:x'), $b64->('1:abc'), $b64->('1:0'), $b64->('1:-5'), $b64->('1'), $b64->("2:a\0b"),
                 $b64->("2:\xff"), $b64->("2:a\xd0"), $b64->("2:\xed\xa0\x80"), $b64->("2:\xc0\xaf")) {
        my $res = api('myself', 'GET', "/api/users?after=$bad");
        is $res->{status}, 400, "after=$bad: 400";
        is $res->{json}{error}{field}, 'after', '  naming after';
    }
    is api('myself', 'GET', '/api/users?after=')->{status}, 400, 'an empty cursor: 400';
    is api('myself', 'GET', "/api/users?limit=$_")->{status}, 400, "limit=$_: 400" for 0, 201, 'x';
    is api('myself', 'GET', '/api/users?limit=200')->{status}, 200, 'limit=200 is fine';
    is api('myself', 'GET', '/api/users?q=' . ('a' x 300))->{status}, 400, 'a q longer than any nickname could be: 400';
};

subtest 'a page examines a bounded number of rows: many skipped conversations give a short page and a cursor' => sub {
    # 1500 conversations of me with accounts none of which matches q: one page cannot walk them all
    my $sql = "BEGIN;"
        . "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500) "
        . "INSERT INTO users (nickname, email, password_hash, first_name, last_name, age, gender, created_at) "
        . "SELECT 'zz' || i, 'zz' || i || '\@example.org', 'x', 'Z', 'Z', 20, 'other', '2026-01-01T00:00:00.000Z' FROM n;"
        . "INSERT INTO conversations (user_id, other_id, last_message_id, last_message_at) "
        . "SELECT $id{myself}, id, 1000000000 + id, '2030-01-01T00:00:00.000Z' FROM users WHERE nickname LIKE 'zz%';"
        . "COMMIT;";
    $server->db_query($sql);
    my $res = api('myself', 'GET', '/api/users?q=Alp&limit=5');
    is scalar @{ $res->{json}{users} }, 0, 'the first page of q=Alp is empty: its budget went on skipping';
    ok defined $res->{json}{next}, 'and gives a cursor to go on';
    my ($users, $sizes) = all_pages('myself', 'q=Alp&limit=5');
    is_deeply names($users), [qw(Alpha alpine ALPS)], 'following it finds every match, once';
    ok @$sizes >= 2, 'over several pages (' . scalar(@$sizes) . ')';
    ($users) = all_pages('myself', 'limit=200');
    is scalar @$users, @names - 1 + 3 + 1500, 'the whole list, paged, holds everyone once';
    is $users->[0]{nickname}, 'zz1500', 'the newest conversation first';
};

subtest 'q ending in a character whose next code point is longer or far (п, ÿ, ¿, DEL, U+10FFFF) finds its nicknames' => sub {
    require Encode;
    my $log_at = length $server->log;
    my @bytes = ("\xd0\xbf\xd1\x91\xd1\x82\xd1\x80", "\xd1\x80\xd0\xbe\xd0\xbc", "\xc3\xbfann", "\xc2\xbfqu\xc3\xa9", "\x7fdel",
                 "~\xf4\x8f\xbf\xbfx", "long" . ("\xc3\xa9" x 600), 'longz');
    my $n = 0;
    $server->db_query('INSERT INTO users (nickname, email, password_hash, first_name, last_name, age, gender, created_at) VALUES '
                      . join(',', map { ++$n; "(?, 'utf$n\@example.org', 'x', 'U', 'T', 20, 'other', '2026-01-01T00:00:00.000Z')" } @bytes),
                      @bytes);
    my ($pyotr, $rom, $yann, $que, $del, $max, $long) = map { Encode::decode('utf8', $_) } @bytes; # lax: U+10FFFF is a noncharacter
    my $q = sub { names((all_pages('myself', "limit=1&q=$_[0]"))[0]) };
    is_deeply $q->('%D0%BF'), [$pyotr], 'п (D0 BF) finds пётр, not ром (р is the next character)';
    is_deeply $q->('%D0%9F'), [], 'П is another letter (only ASCII folds)';
    is_deeply $q->('%C3%BF'), [$yann], 'ÿ (C3 BF) finds ÿann';
    is_deeply $q->('%C2%BF'), [$que], '¿ (C2 BF) finds ¿qué';
    is_deeply $q->('%7F'), [$del], 'DEL finds the nickname that starts with it';
    is_deeply $q->('~%F4%8F%BF%BF'), [$max], 'U+10FFFF, which has no next code point, carries to the character before';
    is_deeply $q->('%F4%8F%BF%BF'), [], 'U+10FFFF alone: no upper bound, and no match';
    is_deeply $q->('long'), ['longz'], 'a nickname too long for a cursor is left out of the list; the one after it is not';
    my $log = substr $server->log, $log_at;
    unlike $log, qr/forumd\[\d+\] error:/, 'and no error in the log';
    $server->db_query("DELETE FROM users WHERE email LIKE 'utf%\@example.org'");
};

subtest 'every users-list and read-mark query walks an index' => sub {
    plan skip_all => 'SQLite only: these are the plans of SQLite\'s query planner (PostgreSQL\'s depend on its statistics)'
        unless $server->backend eq 'sqlite';
    my $plan = sub {
        my $sql = shift;
        return join "\n", `sqlite3 -readonly '$server->{db}' "EXPLAIN QUERY PLAN $sql"`;
    };
    # the statements of plugins/chat/store.c, with constants for their parameters
    my $conv = $plan->('SELECT c.other_id, u.nickname, c.last_message_at, c.unread, c.last_message_id, substr(m.body, 1, 80) '
                       . 'FROM conversations c JOIN users u ON u.id = c.other_id LEFT JOIN messages m ON m.id = c.last_message_id '
                       . 'WHERE c.user_id = 1 AND c.last_message_id < 99 ORDER BY c.last_message_id DESC LIMIT 51');
    like $conv, qr/SEARCH c USING (?:COVERING )?INDEX conversations_recent \(user_id=\? AND last_message_id<\?\)/,
        'conversations walk (user_id, last_message_id)';
    like $conv, qr/SEARCH u USING INTEGER PRIMARY KEY/, 'and find each user by id';
    like $conv, qr/SEARCH m USING INTEGER PRIMARY KEY/, 'and the last message (its preview) by id';
    unlike $conv, qr/TEMP B-TREE|SCAN/, 'without sorting or scanning';
    my ($a, $b) = ("CAST('a' AS CITEXT)", "CAST('b' AS CITEXT)");
    for my $where ("u.nickname > $a", "u.nickname > $a AND u.nickname < $b", "u.nickname >= $a", "u.nickname >= $a AND u.nickname < $b") {
        my $others = $plan->('SELECT u.id, u.nickname, CASE WHEN EXISTS (SELECT 1 FROM conversations c WHERE c.user_id = 1 AND c.other_id = u.id) '
                             . "THEN 1 ELSE 0 END FROM users u WHERE $where AND length(CAST(u.nickname AS BLOB)) <= 1024 ORDER BY u.nickname LIMIT 51");
        like $others, qr/SEARCH u USING (?:COVERING )?INDEX sqlite_autoindex_users_1 \(nickname[<>]/, "others ($where) walk the nickname index";
        like $others, qr/SEARCH c USING PRIMARY KEY \(user_id=\? AND other_id=\?\)/, '  and look their conversation up';
        unlike $others, qr/TEMP B-TREE|SCAN/, '  without sorting or scanning';
    }
    my $mark = 'CASE WHEN conversations.read_up_to >= 5 OR conversations.read_up_to >= conversations.last_message_id '
               . 'THEN conversations.read_up_to WHEN 5 < conversations.last_message_id THEN 5 ELSE conversations.last_message_id END';
    my $read = $plan->("UPDATE conversations SET read_up_to = $mark, unread = received - COALESCE(("
                       . "SELECT m.hi_sent FROM messages m WHERE m.user_lo = 1 AND m.user_hi = 2 AND m.id <= $mark "
                       . 'ORDER BY m.id DESC LIMIT 1), 0) WHERE user_id = 1 AND other_id = 2');
    like $read, qr/SEARCH m USING INDEX messages_pair \(user_lo=\? AND user_hi=\? AND (?:rowid|id)<\?\)/,
        'a read mark seeks the newest message of the pair at or below it';
    unlike $read, qr/TEMP B-TREE|SCAN/, 'without counting or sorting';
    my $sent = $plan->('SELECT COALESCE((SELECT received FROM conversations WHERE user_id = 1 AND other_id = 2), 0), '
                       . 'COALESCE((SELECT received FROM conversations WHERE user_id = 2 AND other_id = 1), 0)');
    unlike $sent, qr/SCAN (?!CONSTANT ROW)/, 'storing a message reads the counters by primary key';
};

# The unread count of `who` for the conversation with `other`, from the users list.
sub unread_of {
    my ($who, $other) = @_;
    my ($users) = all_pages($who, "q=$other&limit=200");
    my ($row) = grep { $_->{nickname} eq $other } @$users;
    return $row->{unread};
}

sub mark_read {
    my ($who, $other, $up_to) = @_;
    my $res = api($who, 'POST', "/api/messages/$id{$other}/read", { up_to => $up_to });
    die "read: $res->{status}" unless $res->{status} == 204;
}

subtest 'read marks anywhere in a conversation leave unread exact' => sub {
    my ($o, $n) = (ws('oscar'), ws('November'));
    my @from_o = map { message($o, 'November', "o$_") } 1 .. 2;
    my $n1 = message($n, 'oscar', 'n1');
    push @from_o, message($o, 'November', 'o3');
    my $n2 = message($n, 'oscar', 'n2');
    push @from_o, map { message($o, 'November', "o$_") } 4 .. 5;
    is unread_of('November', 'oscar'), 5, 'five from oscar unread';
    is unread_of('oscar', 'November'), 2, 'two from November unread';
    mark_read('November', 'oscar', $n1->{id});
    is unread_of('November', 'oscar'), 3, 'a mark at his own message: what oscar sent after it';
    mark_read('November', 'oscar', $from_o[2]{id});
    is unread_of('November', 'oscar'), 2, 'a mark at the third: two left';
    mark_read('November', 'oscar', $from_o[0]{id});
    is unread_of('November', 'oscar'), 2, 'an older mark changes nothing';
    mark_read('oscar', 'November', $from_o[1]{id});
    is unread_of('oscar', 'November'), 2, 'oscar marks up to his own second: both of November\'s still unread';
    mark_read('oscar', 'November', $from_o[3]{id});
    is unread_of('oscar', 'November'), 0, 'up to his fourth: none';
    mark_read('November', 'oscar', 1_000_000_000_000);
    is unread_of('November', 'oscar'), 0, 'a mark beyond every message: none';
    my $o6 = message($o, 'November', 'o6');
    is unread_of('November', 'oscar'), 1, 'a message after it is unread';
    mark_read('November', 'oscar', $from_o[4]{id});
    is unread_of('November', 'oscar'), 1, 'and stays unread: the far mark stopped at the last message there was';
    mark_read('November', 'oscar', $o6->{id});
    is unread_of('November', 'oscar'), 0, 'until it is read';
    $_->close for $o, $n;
};

subtest 'the counters are rebuilt from the messages by the migration' => sub {
    plan skip_all => 'SQLite only: databases made by the first chat schema are SQLite files; on PostgreSQL chat starts '
                   . 'at the schema of today' unless $server->backend eq 'sqlite';
    my ($p, $q) = (ws('Papa'), ws('quebec'));
    my @from_p = map { message($p, 'quebec', "p$_") } 1 .. 4;
    message($q, 'Papa', 'q1');
    $_->close for $p, $q;
    is $server->stop, 0, 'forumd stops';
    # the database as the first chat schema left it
    $server->db_query('DROP INDEX conversations_recent; ALTER TABLE messages DROP COLUMN lo_sent; '
                      . 'ALTER TABLE messages DROP COLUMN hi_sent; ALTER TABLE conversations DROP COLUMN received; '
                      . "DELETE FROM forum_migrations WHERE owner = 'chat' AND number >= 2");
    $server = spawn_forumd(settings => "auth:\n  scrypt-n: 1024", db => "$db_dir/forum.db");
    is unread_of('quebec', 'Papa'), 4, 'four unread, as before';
    mark_read('quebec', 'Papa', $from_p[1]{id});
    is unread_of('quebec', 'Papa'), 2, 'a mark at the second: two left';
    mark_read('Papa', 'quebec', $from_p[3]{id});
    is unread_of('Papa', 'quebec'), 1, 'Papa has q1 unread after his fourth';
    $p = ws('Papa');
    message($p, 'quebec', 'p5');
    mark_read('quebec', 'Papa', $from_p[3]{id});
    is unread_of('quebec', 'Papa'), 1, 'a new message counts on from the rebuilt counters';
    $p->close;
};

is $server->stop, 0, 'forumd exits 0';
done_testing;
