# Accounts (plugin auth): register, validation, duplicates, login by nickname or email, the
# identical failure, logout everywhere, protected routes, rate limits, the hashing queue.
use strict;
use warnings;
use lib '.';
use File::Temp qw(tempdir);
use Test::More;
use t::Util;

my $server = spawn_forumd(settings => "auth:\n  scrypt-n: 1024");

my %alice = (nickname => 'alice', email => 'Alice@Example.com', password => 'correct horse', first_name => ' Alice ',
             last_name => 'Liddell', age => 30, gender => 'female');
my $n = 0;
sub fresh {    # a valid registration with unique nickname and email
    my %over = @_;
    $n++;
    return { %alice, nickname => "user_$n$$", email => "user$n.$$\@example.org", %over };
}

sub no_hash_in {
    my $res = shift;
    unlike $res->{body}, qr/\$s1\$|password/i, 'no password or hash in the answer';
}

run_with_curl($server, sub {
    my ($proto, $base, $curl) = @_;
    my $jar = tempdir(CLEANUP => 1) . '/jar';
    my $reg = fresh(first_name => '  Ada  ', email => "Ada.$proto\@Example.COM");
    (my $tag = $proto) =~ s/\W//g;
    $reg->{nickname} = "Ada_$tag";

    my $res = curl_json($curl, 'POST', "$base/api/auth/register", json => $reg, cookie_jar => $jar);
    is $res->{status}, 201, 'register: 201';
    my $user = $res->{json}{user};
    is_deeply [sort keys %$user], [sort qw(id nickname first_name last_name age gender email created_at)], 'the user object';
    is $user->{first_name}, 'Ada', 'text is trimmed';
    is $user->{email}, lc "Ada.$proto\@example.com", 'the email is stored lower-cased';
    like $user->{created_at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'created_at is ISO-8601 UTC';
    like $res->{headers}{'set-cookie'} // '', qr/^sid=[0-9a-f]{64};.*HttpOnly.*SameSite=Lax/, 'registering logs in';
    no_hash_in($res);

    $res = curl_json($curl, 'GET', "$base/api/auth/me", cookie_jar => $jar);
    is_deeply $res->{json}{user}, $user, 'me shows the same user';

    for my $dup ([nickname => uc $reg->{nickname}], [email => uc $reg->{email}]) {
        $res = curl_json($curl, 'POST', "$base/api/auth/register", json => fresh(@$dup));
        is $res->{status}, 409, "a taken $dup->[0] in another case: 409";
        is $res->{json}{error}{field}, $dup->[0], 'naming the field';
    }

    for my $login ($reg->{nickname}, uc $reg->{nickname}, uc $reg->{email}, "  $reg->{email} ") {
        my $j2 = tempdir(CLEANUP => 1) . '/jar';
        $res = curl_json($curl, 'POST', "$base/api/auth/login", json => { login => $login, password => $reg->{password} },
                         cookie_jar => $j2);
        is $res->{status}, 200, "log in as '$login'";
        is $res->{json}{user}{id}, $user->{id}, 'as the same user';
        no_hash_in($res);
    }

    my $wrong = curl_json($curl, 'POST', "$base/api/auth/login", json => { login => $reg->{nickname}, password => 'not it!!' });
    my $unknown = curl_json($curl, 'POST', "$base/api/auth/login", json => { login => "nobody_$tag", password => 'not it!!' });
    is $wrong->{status}, 401, 'a wrong password: 401';
    is_deeply [$unknown->{status}, $unknown->{body}], [$wrong->{status}, $wrong->{body}],
        'an unknown account gets exactly the same answer';

    $res = curl_json($curl, 'POST', "$base/api/auth/register", body => 'nickname=x', headers => ['Content-Type: application/x-www-form-urlencoded']);
    is $res->{status}, 415, 'a form body: 415';
    $res = curl_json($curl, 'POST', "$base/api/auth/login", json => { login => 'x', password => 'y' }, headers => ['Origin: https://evil.example']);
    is $res->{status}, 403, 'a cross-origin login: 403';

    $res = curl_json($curl, 'POST', "$base/api/auth/logout", cookie_jar => $jar);
    is $res->{status}, 204, 'logout: 204';
    $res = curl_json($curl, 'GET', "$base/api/auth/me", cookie_jar => $jar);
    is $res->{status}, 401, 'then me is 401';
    $res = curl_json($curl, 'POST', "$base/api/auth/logout", cookie_jar => $jar);
    is $res->{status}, 401, 'and logout needs a session';
});

subtest 'each validation rule, each with its field' => sub {
    my $url = $server->url . '/api/auth/register';
    my @cases = (
        [nickname => 'ab', 422], [nickname => 'x' x 33, 422], [nickname => 'bad name', 422], [nickname => "caf\x{e9}", 422],
        [nickname => undef, 422], [nickname => 12345, 400],
        [email => 'no-at-sign', 422], [email => 'a@b', 422], [email => 'a@@b.com', 422], [email => '@b.com', 422],
        [email => 'a b@c.com', 422], [email => 'a@b..com', 422], [email => ('x' x 250) . '@b.com', 422], [email => [], 400],
        [password => 'short', 422], [password => 'x' x 129, 422], [password => undef, 422], [password => 12345678, 400],
        [first_name => '', 422], [first_name => '   ', 422], [first_name => 'x' x 65, 422], [first_name => {}, 400],
        [last_name => '', 422], [last_name => 'x' x 65, 422], [last_name => "a\x{1}b", 422],
        [age => 12, 422], [age => 131, 422], [age => '30', 400], [age => 30.5, 400], [age => undef, 422],
        [gender => 'robot', 422], [gender => 'Female', 422], [gender => undef, 422],
    );
    for my $case (@cases) {
        my ($field, $value, $status) = @$case;
        my $body = fresh();
        if (defined $value) { $body->{$field} = $value } else { delete $body->{$field} }
        my $res = curl_json('curl -s', 'POST', $url, json => $body);
        my $shown = defined $value ? (ref $value ? ref $value : length $value > 12 ? substr($value, 0, 12) . '...' : $value) : 'missing';
        is $res->{status}, $status, "$field $shown: $status";
        is $res->{json}{error}{field}, $field, "  names $field";
        is $res->{json}{error}{code}, $status == 400 ? 'bad_request' : 'validation', '  with the right code';
    }
    my $res = curl_json('curl -s', 'POST', $url, json => fresh(first_name => 'x' x 64, nickname => 'a.b-c_d', password => "\x{e9}" x 8));
    is $res->{status}, 201, 'the limits themselves are accepted (64 characters, 8 non-ASCII characters)';
    $res = curl_json('curl -s', 'POST', $url, body => '[1]', headers => ['Content-Type: application/json']);
    is $res->{status}, 400, 'a body that is not an object: 400';
    my $count = curl_json('curl -s', 'POST', $server->url . '/api/auth/login', json => { login => 'a.b-c_d', password => "\x{e9}" x 8 });
    is $count->{status}, 200, 'and that account logs in';
};

subtest 'logout closes the WebSockets of its session; hello carries the user; user.created reaches everyone' => sub {
    my $jar = tempdir(CLEANUP => 1) . '/jar';
    my $reg = fresh();
    my $res = curl_json('curl -s', 'POST', $server->url . '/api/auth/register', json => $reg, cookie_jar => $jar);
    my $ws = ws_connect('ws://127.0.0.1:' . $server->port . '/ws', cookie => cookie_of($jar));
    my $hello = $ws->wait_for('hello');
    is $hello->{user}{nickname}, $reg->{nickname}, 'hello has the user';
    ok !exists $hello->{user}{password_hash}, 'and no hash';

    my $newcomer = fresh();
    $res = curl_json('curl -s', 'POST', $server->url . '/api/auth/register', json => $newcomer);
    my $created = $ws->wait_for('user.created');
    is_deeply $created->{user}, { id => $res->{json}{user}{id}, nickname => $newcomer->{nickname} }, 'user.created with id and nickname';

    curl_json('curl -s', 'POST', $server->url . '/api/auth/logout', cookie_jar => $jar);
    my $closed = $ws->wait_closed(5);
    ok $closed, 'the WebSocket of that session is closed at logout';
    my $again = ws_connect('ws://127.0.0.1:' . $server->port . '/ws', cookie => cookie_of($jar) // 'sid=x');
    is $again->{error}, 401, 'and cannot come back';
};

subtest 'failed logins are limited per account and per address' => sub {
    my $limited = spawn_forumd(settings => "auth:\n  scrypt-n: 1024\n  login-limit: 3\n  login-window: 600");
    my $reg = fresh();
    curl_json('curl -s', 'POST', $limited->url . '/api/auth/register', json => $reg);
    my $login = sub {
        my ($addr, $who, $password) = @_;
        return curl_json("curl -s --interface $addr", 'POST', 'http://127.0.0.1:' . $limited->port . '/api/auth/login',
                         json => { login => $who, password => $password // 'wrong password' });
    };
    is $login->('127.0.0.2', $reg->{nickname})->{status}, 401, "failure $_" for 1 .. 3;
    my $res = $login->('127.0.0.2', $reg->{nickname});
    is $res->{status}, 429, 'the fourth failure in the window: 429';
    is $res->{json}{error}{code}, 'rate_limited', 'rate_limited';
    like $res->{headers}{'retry-after'} // '', qr/^[1-9]\d*$/, 'with Retry-After';
    is $login->('127.0.0.3', uc $reg->{nickname}, $reg->{password})->{status}, 429,
        'the account stays limited from another address, even with the right password';
    is $login->('127.0.0.3', 'someone_else')->{status}, 401, 'another account from another address is not limited';
    is $login->('127.0.0.4', "ghost$_")->{status}, 401, "address failure $_ (unknown accounts)" for 1 .. 3;
    is $login->('127.0.0.4', 'ghost9')->{status}, 429, 'an address that failed too often is limited for any account';
    is $limited->stop, 0, 'forumd exits 0';
};

is $server->stop, 0, 'forumd exits 0';

subtest 'a burst past the hashing queue gets 503, never a stalled loop' => sub {
    my $busy = spawn_forumd(settings => "auth:\n  scrypt-n: 131072\n  hash-workers: 1\n  hash-queue: 1");
    my @pids;
    my $dir = tempdir(CLEANUP => 1);
    for my $i (1 .. 6) {
        my $pid = fork // die;
        if ($pid == 0) {
            exec 'curl', '-s', '-o', "$dir/$i.body", '-D', "$dir/$i.head", '-w', '%{http_code}', '-H', 'Content-Type: application/json',
                '--data', "{\"login\":\"nobody$i\",\"password\":\"whatever\"}", $busy->url . '/api/auth/login';
        }
        push @pids, $pid;
    }
    my $status = curl_json('curl -s', 'GET', $busy->url . '/_status');
    is $status->{status}, 200, 'other requests are answered meanwhile';
    waitpid $_, 0 for @pids;
    my @heads = map { slurp("$dir/$_.head") } 1 .. 6;
    my $refused = grep { m{^HTTP/1.1 503} } @heads;
    my $answered = grep { m{^HTTP/1.1 401} } @heads;
    ok $refused >= 1, "some are refused with 503 ($refused)";
    ok $answered >= 2, "the running and the queued one are answered ($answered)";
    ok !grep({ m{^HTTP/1.1 503} && !/retry-after: 1/i } @heads), '503 carries Retry-After';
    is $busy->stop, 0, 'forumd exits 0';
};

done_testing;
