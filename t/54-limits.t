# Limits that must hold under load: failed logins are charged when they are decided, so a burst in
# flight cannot pass the limit (per account and per address), a success or a refused hash gives its
# attempt back; the users list is paged with a cursor and a prefix search whose cost does not grow
# with the number of accounts; read marks recount without walking every message.
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
    my $server = spawn_forumd(settings => "auth:\n  hash-workers: 1\n  hash-queue: 100\n  login-limit: 10\n  login-window: 60");
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

done_testing;
