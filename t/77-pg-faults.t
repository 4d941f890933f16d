# PostgreSQL in trouble (PostgreSQL only): a statement past the statement timeout and a full pool are
# clear 503s that /_status counts, and the loop keeps serving meanwhile; a slow query or a table lock
# held from psql delays nobody else (checked by the order answers come in, never by how long they
# take); a restart while the pool is idle leaves every connection serving, each to one request at a
# time; and PostgreSQL restarted, or stopped for a few seconds, while clients post and chat: every
# request gets an answer (201 or a clear 503 "unavailable", never a 500, a hang or a crash), forumd
# reconnects by itself, and everything acknowledged is in the database once, resends included.
#
# It starts a PostgreSQL of its own (t/pg-cluster) so that it can restart and stop it without
# disturbing the other tests of the run.
use strict;
use warnings;
use lib '.';
use File::Temp qw(tempdir);
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(sleep time);

# The private cluster stops last: this END block is compiled before t::Util's, so it runs after it (END
# blocks run in reverse order), once t::Util has stopped the servers and dropped their databases.
my ($cluster, $main_pid) = (undef, $$);
END { system('t/pg-cluster', 'stop', $cluster) if defined $cluster && $$ == $main_pid }

use Mojo::IOLoop;
use Test::More;
use t::Util;

plan skip_all => 'PostgreSQL only (it restarts and stops a PostgreSQL of its own): set FORUMD_TEST_POSTGRES, as make test-pg does'
    unless backend() eq 'postgres';

$cluster = tempdir('forumd-pgfaults.XXXXXX', TMPDIR => 1);
chomp(my $conninfo = `t/pg-cluster start '$cluster'`);
die "t/pg-cluster start failed" if $? || !$conninfo;
# every database of this test lives in the private cluster
$ENV{FORUMD_TEST_POSTGRES} = $conninfo;

my $PLUGINS = [qw(auth posts chat probe)];
my $SETTINGS = "auth:\n  scrypt-n: 1024";

# --- helpers ---

sub status {
    my ($server) = @_;
    my $res = curl_json('curl -s --max-time 10', 'GET', $server->url . '/_status');
    return $res->{status} == 200 ? $res->{json}{database} : undef;
}

# Runs the event loop until $cond is true or $timeout seconds have passed; returns $cond's last value.
sub run_until {
    my ($cond, $timeout) = @_;
    my $deadline = time + $timeout;
    my $tick = Mojo::IOLoop->recurring(0.02 => sub { });
    my $met;
    Mojo::IOLoop->one_tick until ($met = $cond->()) || time > $deadline;
    Mojo::IOLoop->remove($tick);
    return $met;
}

sub wait_status {
    my ($server, $cond, $timeout) = @_;
    my $deadline = time + $timeout;
    while (time < $deadline) {
        my $st = status($server);
        return $st if $st && $cond->($st);
        run_until(sub { 0 }, 0.05); # requests sent without waiting go out and come back meanwhile
    }
    return undef;
}

my $ua = mojo_ua();
$ua->request_timeout(60); # a request unanswered after a minute is a hang

# Sends a request without waiting; $cb->($status, $json) runs when it is answered ($status undef: no answer).
sub http_nb {
    my ($server, $method, $path, $json, $cookie, $cb) = @_;
    my $tx = $ua->build_tx($method => $server->url . $path => { ($cookie ? (Cookie => $cookie) : ()) },
                           (defined $json ? (json => $json) : ()));
    $ua->start($tx, sub {
        my (undef, $tx) = @_;
        my $json = eval { json_decode($tx->res->body) };
        $cb->($tx->res->code, $json, $tx->res->headers->header('Retry-After'), $tx->res->body);
    });
}

sub register {
    my ($server, $name) = @_;
    my $jar = tempdir(CLEANUP => 1) . '/jar';
    my $res = curl_json('curl -s', 'POST', $server->url . '/api/auth/register', cookie_jar => $jar,
                        json => { nickname => $name, email => "$name\@example.org", password => 'password1',
                                  first_name => 'F', last_name => 'L', age => 33, gender => 'other' });
    die "register $name: $res->{status} $res->{body}" unless $res->{status} == 201;
    return { cookie => cookie_of($jar), id => $res->{json}{user}{id}, jar => $jar };
}

sub ws_of {
    my ($server, $user) = @_;
    my $ws = ws_connect('ws://127.0.0.1:' . $server->port . '/ws', cookie => $user->{cookie});
    die "ws: $ws->{error}" if $ws->{error};
    $ws->wait_for('hello') or die 'no hello';
    return $ws;
}

# A psql session kept open on the database `path` stands for, fed line by line.
sub psql_session {
    my ($path, @sql) = @_;
    my $ci = db_conninfo($path);
    open my $fh, '|-', 'psql', '-X', '-q', '-d', $ci or die "psql: $!";
    $fh->autoflush(1);
    print $fh map { "$_\n" } @sql;
    return $fh;
}

# --- 1. a statement past the statement timeout ---

subtest 'a statement that outlasts statement-timeout is a 503 "unavailable" that /_status counts' => sub {
    my $server = spawn_forumd(plugins => $PLUGINS, settings => $SETTINGS, database => { connections => 2, statement_timeout => 1 });
    my $before = status($server);
    is $before->{backend}, 'postgresql', 'the server runs on PostgreSQL';
    is $before->{statement_timeout_ms}, 1000, 'statement-timeout: 1 is 1000 ms';
    my $res = curl_json('curl -s --max-time 60', 'POST', $server->url . '/api/probe/db-sleep', json => { seconds => 0.2 });
    is $res->{status}, 200, 'a sleep shorter than the timeout is answered 200' or diag $res->{body};
    $res = curl_json('curl -s --max-time 60', 'POST', $server->url . '/api/probe/db-sleep', json => { seconds => 5 });
    is $res->{status}, 503, 'a 5 s statement with a 1 s timeout is answered 503' or diag $res->{body};
    is $res->{json}{error}{code}, 'unavailable', 'code "unavailable"';
    like $res->{json}{error}{message}, qr/busy/, 'the message says the database is busy';
    ok $res->{headers}{'retry-after'}, 'with Retry-After';
    my $after = status($server);
    cmp_ok $after->{statement_timeouts}, '>', $before->{statement_timeouts}, '/_status counts statement_timeouts'
        or diag explain $after;
    is $after->{state}, 'connected', 'the connection stays up: a cancelled statement is not a lost connection';
    is $after->{connections_lost}, 0, 'nothing counted as lost';
    $res = curl_json('curl -s --max-time 60', 'POST', $server->url . '/api/probe/db-sleep', json => { seconds => 0 });
    is $res->{status}, 200, 'the next statement on the pool is answered 200';
    unlike $server->log, qr/" 500 /, 'no 500 in the access log';
    is $server->stop, 0, 'forumd stops cleanly';
};

# --- 2. a full pool ---

subtest 'a full pool: another request waits at most the statement timeout, then 503; /_status answers throughout' => sub {
    my $server = spawn_forumd(plugins => $PLUGINS, settings => $SETTINGS, database => { connections => 1, statement_timeout => 1 });
    my @order;
    # the holder keeps the one connection for 6 s in statements of 0.25 s (none reaches the timeout)
    http_nb($server, 'POST', '/api/probe/db-sleep', { seconds => 6, statements => 24 }, undef,
            sub { push @order, ['holder', @_] });
    my $st = wait_status($server, sub { $_[0]{connections_busy} == 1 }, 30);
    ok $st, 'the holder holds the connection (/_status answers meanwhile)';
    http_nb($server, 'POST', '/api/probe/db-sleep', { seconds => 0 }, undef, sub { push @order, ['waiter', @_] });
    $st = wait_status($server, sub { $_[0]{waiting} >= 1 }, 30);
    ok $st, '/_status answers while a request waits for a connection' and is $st->{connections_busy}, 1, 'with the connection busy';
    ok run_until(sub { @order == 2 }, 90), 'both requests are answered' or diag explain \@order;
    is_deeply [map { $_->[0] } @order], [qw(waiter holder)], 'the waiter is answered first: it did not wait for the holder';
    my ($waiter) = grep { $_->[0] eq 'waiter' } @order;
    my ($holder) = grep { $_->[0] eq 'holder' } @order;
    is $waiter->[1], 503, 'the waiter gets 503';
    is $waiter->[2]{error}{code}, 'unavailable', 'code "unavailable"';
    like $waiter->[2]{error}{message} // '', qr/busy/, 'the message says the database is busy';
    is $holder->[1], 200, 'the holder is answered 200';
    $st = status($server);
    cmp_ok $st->{pool_full}, '>=', 1, '/_status counts pool_full' or diag explain $st;
    is $st->{statement_timeouts}, 0, 'no statement timed out: the holder never reached the limit';
    my $res = curl_json('curl -s --max-time 60', 'POST', $server->url . '/api/probe/db-sleep', json => { seconds => 0 });
    is $res->{status}, 200, 'the pool serves again once the holder is done';
    unlike $server->log, qr/" 500 /, 'no 500 in the access log';
    is $server->stop, 0, 'forumd stops cleanly';
};

# --- 3. a slow query and a table lock delay nobody else ---

# Sends $n chat messages from $ws to $to one after another (each waits for its acknowledgement);
# $on_ack->($client_id) runs for each. Returns when they are all acknowledged (true) or one fails (false).
sub chat_round_trips {
    my ($ws, $to, $prefix, $n, $on_ack) = @_;
    for my $i (1 .. $n) {
        my $cid = "$prefix-$i";
        $ws->send({ type => 'message.send', to => $to, body => "round trip $i", client_id => $cid });
        my $ack;
        run_until(sub {
            for my $k (0 .. $#{ $ws->{queue} }) {
                my $f = $ws->{queue}[$k];
                if (($f->{type} // '') eq 'message' && ($f->{message}{client_id} // '') eq $cid
                    || ($f->{type} // '') eq 'error' && ($f->{ref} // '') eq $cid) {
                    $ack = splice @{ $ws->{queue} }, $k, 1;
                    return 1;
                }
            }
            return 0;
        }, 60);
        return 0 unless $ack && $ack->{type} eq 'message';
        $on_ack->($cid) if $on_ack;
    }
    return 1;
}

subtest 'a slow query (pg_sleep) does not delay cheap requests: they are all answered before it' => sub {
    my $server = spawn_forumd(plugins => $PLUGINS, settings => $SETTINGS, database => { connections => 4, statement_timeout => 30 });
    my ($alice, $bob) = map { register($server, $_) } qw(alice bob);
    my $ws = ws_of($server, $alice);
    my @order;
    http_nb($server, 'POST', '/api/probe/db-sleep', { seconds => 4 }, undef, sub { push @order, ['slow', $_[0]] });
    ok wait_status($server, sub { $_[0]{connections_busy} >= 1 }, 30), 'the slow query is in PostgreSQL';
    for my $i (1 .. 10) {
        my $done;
        http_nb($server, 'GET', "/api/posts?limit=" . (10 + $i), undef, $alice->{cookie}, sub { push @order, ["posts $i", $_[0]]; $done = 1 });
        run_until(sub { $done }, 60);
    }
    chat_round_trips($ws, $bob->{id}, 'slow', 3, sub { push @order, ["chat $_[0]", 'ack'] });
    push @order, ['cheap ones done'];
    ok run_until(sub { grep { $_->[0] eq 'slow' } @order }, 60), 'the slow query is answered too';
    my @names = map { $_->[0] } @order;
    is $names[-1], 'slow', 'the slow query is answered last, after every cheap request and chat round trip'
        or diag explain \@names;
    is scalar(grep { $_->[0] =~ /^posts/ && ($_->[1] // 0) == 200 } @order), 10, 'every GET /api/posts is answered 200';
    is scalar(grep { $_->[0] =~ /^chat/ } @order), 3, 'every chat message is acknowledged';
    my ($slow) = grep { $_->[0] eq 'slow' } @order;
    is $slow->[1], 200, 'the slow query itself is answered 200';
    $ws->close;
    is $server->stop, 0, 'forumd stops cleanly';
};

subtest 'a table lock held from psql: other requests are served; those that need the table answer 503 after the timeout' => sub {
    my $server = spawn_forumd(plugins => $PLUGINS, settings => $SETTINGS, database => { connections => 4, statement_timeout => 1 });
    my ($alice, $bob) = map { register($server, $_) } qw(alice bob);
    my $ws = ws_of($server, $alice);
    my $psql = psql_session($server->db, 'BEGIN;', 'LOCK TABLE posts IN ACCESS EXCLUSIVE MODE;');
    my $locked = sub {
        $server->db_value("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                          . "WHERE c.relname = 'posts' AND l.mode = 'AccessExclusiveLock' AND l.granted AND l.pid <> pg_backend_pid()");
    };
    ok run_until($locked, 30), 'psql holds posts locked';
    my @order;
    my $post = { title => 'under the lock', body => 'waits', categories => ['general'], client_id => 'locked-1' };
    http_nb($server, 'POST', '/api/posts', $post, $alice->{cookie}, sub { push @order, ['post', @_] });
    # the post waits for the lock in PostgreSQL while these are answered
    my $st = status($server);
    ok $st, '/_status answers while a request waits for the lock';
    ok chat_round_trips($ws, $bob->{id}, 'lock', 3, sub { push @order, ["chat $_[0]"] }), 'chat messages are stored and acknowledged';
    my $res = curl_json('curl -s --max-time 60', 'GET', $server->url . '/api/auth/me', cookie_jar => $alice->{jar});
    is $res->{status}, 200, 'a request on other tables (GET /api/auth/me) is answered 200';
    push @order, ['me'];
    ok run_until(sub { grep { $_->[0] eq 'post' } @order }, 60), 'the post that needs the table is answered';
    my @names = map { $_->[0] } @order;
    is $names[-1], 'post', 'after everything else' or diag explain \@names;
    my ($p) = grep { $_->[0] eq 'post' } @order;
    is $p->[1], 503, 'POST /api/posts under the lock answers 503 once the statement timeout passes' or diag explain $p;
    is $p->[2]{error}{code}, 'unavailable', 'code "unavailable"';
    ok $p->[3], 'with Retry-After';
    print $psql "ROLLBACK;\n";
    close $psql;
    ok run_until(sub { !$locked->() }, 30), 'the lock is released';
    $res = curl_json('curl -s --max-time 60', 'POST', $server->url . '/api/posts', cookie_jar => $alice->{jar}, json => $post);
    is $res->{status}, 201, 'the resend with the same client_id is stored' or diag $res->{body};
    is $server->db_value("SELECT count(*) FROM posts WHERE client_id = 'locked-1'"), 1, 'once';
    cmp_ok status($server)->{statement_timeouts}, '>=', 1, 'the wait for the lock counted as a statement timeout'
        or diag grep { /timeout/ } split /^/, $server->log;
    unlike $server->log, qr/" 500 /, 'no 500 in the access log';
    $ws->close;
    is $server->stop, 0, 'forumd stops cleanly';
};

# --- 4. PostgreSQL restarted and stopped under traffic ---

# Runs a command of t/pg-cluster in a child process while the event loop keeps the clients going; its exit
# status, or undef when it did not end within 90 s.
sub cluster_run {
    my ($cmd) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        { exec 't/pg-cluster', $cmd, $cluster };
        POSIX::_exit(127);
    }
    my $status;
    run_until(sub { waitpid($pid, WNOHANG) == $pid and $status = $?, 1 }, 90);
    return $status;
}

# Every connection of the pool at once, and more: `n` requests that each hold one for half a second (those
# beyond the pool wait their turn); their statuses, sorted.
sub use_every_connection {
    my ($server, $n) = @_;
    my @got;
    my @why;
    http_nb($server, 'POST', '/api/probe/db-sleep', { seconds => 0.5 }, undef, sub {
        push @got, $_[0] // 'no answer';
        push @why, $_[3] if ($_[0] // 0) != 200;
    }) for 1 .. $n;
    run_until(sub { @got == $n }, 90);
    diag 'db-sleep answered: ', explain \@why if @why;
    return join ' ', sort @got;
}

subtest 'PostgreSQL restarted while the pool is idle: afterwards every connection serves, each to one request at a time' => sub {
    my $server = spawn_forumd(plugins => $PLUGINS, settings => $SETTINGS, database => { connections => 4, statement_timeout => 5 });
    is use_every_connection($server, 8), join(' ', (200) x 8), 'before: eight requests on four connections all succeed';
    is cluster_run('restart'), 0, 'PostgreSQL restarted (t/pg-cluster restart)';
    my $st = wait_status($server, sub { $_[0]{state} eq 'connected' }, 30);
    ok $st, '/_status: "connected" again' or diag explain status($server);
    is $st->{connections_lost}, 4, 'the four idle connections were counted lost' if $st;
    for my $round (1 .. 2) {
        is use_every_connection($server, 8), join(' ', (200) x 8), "after: eight requests on four connections all succeed (round $round)";
    }
    unlike $server->log, qr/another command is already in progress/, 'no connection was given to two requests at once';
    is $server->stop, 0, 'forumd stops cleanly';
};

subtest 'PostgreSQL restarted, then stopped for seconds, while clients post and chat' => sub {
    my $server = spawn_forumd(plugins => $PLUGINS, settings => $SETTINGS, database => { connections => 4, statement_timeout => 5 });
    my ($alice, $bob) = map { register($server, $_) } qw(alice bob);
    my $ws = ws_of($server, $alice);

    # what each client sent and how each attempt was answered
    my (%post_acked, %chat_acked, @bad, %post_attempts, %chat_attempts);
    my ($posts_503, $chat_503, $in_flight) = (0, 0, 0);
    my $running = 1;
    my ($next_post, $next_chat) = (0, 0);

    my $send_post;
    $send_post = sub {
        my ($cid) = @_;
        ++$post_attempts{$cid};
        ++$in_flight;
        http_nb($server, 'POST', '/api/posts', { title => "post $cid", body => 'under faults', categories => ['general'], client_id => $cid },
                $alice->{cookie}, sub {
            my ($code, $json, undef, $raw) = @_;
            --$in_flight;
            if (($code // 0) == 201) {
                # a 201 says the post is stored, and carries it
                push @bad, "post $cid: 201 without the post: $raw" unless ref $json eq 'HASH' && $json->{post}{id};
                $post_acked{$cid} = ref $json eq 'HASH' ? $json->{post}{id} // 0 : 0;
            } else {
                if (($code // 0) == 503 && ($json->{error}{code} // '') eq 'unavailable') {
                    ++$posts_503;
                } else {
                    push @bad, "post $cid: " . ($code // 'no answer') . ' ' . json_encode($json);
                }
                # the client's resend, with the same client_id
                Mojo::IOLoop->timer(0.05 => sub { $send_post->($cid) });
                return;
            }
            $send_post->('p' . ++$next_post) if $running;
        });
    };
    my %chat_pending;
    my $send_chat = sub {
        my ($cid) = @_;
        ++$chat_attempts{$cid};
        $chat_pending{$cid} = 1;
        $ws->send({ type => 'message.send', to => $bob->{id}, body => "message $cid", client_id => $cid });
    };
    # the chat's answers, as they come
    $ws->{tx}->on(text => sub {
        my $f = eval { json_decode($_[1]) };
        unless (ref $f eq 'HASH') {
            push @bad, "frame: not a JSON object: $_[1]";
            return;
        }
        if (($f->{type} // '') eq 'message' && defined $f->{message}{client_id} && $chat_pending{ $f->{message}{client_id} }) {
            my $cid = $f->{message}{client_id};
            delete $chat_pending{$cid};
            $chat_acked{$cid} = $f->{message}{id};
            $send_chat->('c' . ++$next_chat) if $running;
        } elsif (($f->{type} // '') eq 'error' && defined $f->{ref} && $chat_pending{ $f->{ref} }) {
            my $cid = $f->{ref};
            if (($f->{code} // '') eq 'unavailable') {
                ++$chat_503;
            } else {
                push @bad, "chat $cid: error frame " . json_encode($f);
            }
            Mojo::IOLoop->timer(0.05 => sub { $send_chat->($cid) });
        }
    });
    $ws->{queue} = []; # frames go to the handler above; the queue is not read

    # three posts and three messages in flight at any time
    $send_post->('p' . ++$next_post) for 1 .. 3;
    $send_chat->('c' . ++$next_chat) for 1 .. 3;
    my $acked = sub { scalar(keys %post_acked) + scalar(keys %chat_acked) };

    ok run_until(sub { keys %post_acked >= 10 && keys %chat_acked >= 10 }, 60), 'traffic flows before the fault';
    my $lost0 = status($server)->{connections_lost};

    # a restart (fast shutdown: PostgreSQL ends every session, then starts again)
    is cluster_run('restart'), 0, 'PostgreSQL restarted (t/pg-cluster restart)';
    my $mark = $acked->();
    ok run_until(sub { $acked->() >= $mark + 20 && keys(%chat_acked) && keys(%post_acked) }, 60), 'traffic flows again after the restart';
    my $st = wait_status($server, sub { $_[0]{state} eq 'connected' }, 30);
    ok $st, '/_status: database.state is "connected" again' or diag explain status($server);
    cmp_ok $st->{connections_lost}, '>', $lost0, 'and the lost connections were counted' if $st;
    my $lost1 = $st ? $st->{connections_lost} : $lost0;
    # "connected" means every connection serves: eight requests on the four connections all succeed
    is use_every_connection($server, 8), join(' ', (200) x 8), 'every connection of the pool serves again after the restart';

    # an outage of a few seconds
    is cluster_run('down'), 0, 'PostgreSQL stopped (t/pg-cluster down)';
    my ($p503, $c503) = ($posts_503, $chat_503);
    # clients keep posting and chatting into the outage, for longer than a chat message waits queued (5 s)
    run_until(sub { 0 }, 7);
    $st = status($server);
    ok $st, '/_status answers while PostgreSQL is down';
    is $st->{state}, 'unavailable', 'and says the database is unavailable'
        or diag explain($st), grep { /to PostgreSQL (?:lost|is back)/ } split /^/, $server->log if $st;
    cmp_ok $posts_503, '>', $p503, 'posts during the outage are answered 503 "unavailable"';
    cmp_ok $chat_503, '>', $c503, 'messages during the outage get an "unavailable" error frame';
    is cluster_run('up'), 0, 'PostgreSQL started again (t/pg-cluster up)';
    $st = wait_status($server, sub { $_[0]{state} eq 'connected' }, 30);
    ok $st, '/_status: "connected" again after the outage' or diag explain status($server);
    cmp_ok $st->{connections_lost}, '>', $lost1, 'the outage counted lost connections' if $st;
    $mark = $acked->();
    ok run_until(sub { $acked->() >= $mark + 20 }, 60), 'traffic flows again after the outage';
    is use_every_connection($server, 8), join(' ', (200) x 8), 'every connection of the pool serves again after the outage';

    # the clients stop sending new ones; everything in flight (resends included) must settle
    $running = 0;
    ok run_until(sub { $in_flight == 0 && !keys %chat_pending }, 120), 'every request in flight is answered: no hang'
        or diag "in flight: $in_flight posts; messages: @{[ sort keys %chat_pending ]}";

    my %seen;
    ok !@bad, 'every answer was a success or a 503 "unavailable" (no 500, no other error)'
        or diag scalar(@bad) . " other answers; the first of each kind:\n"
                . join "\n", grep { !$seen{ s/\b[pc]\d+\b/ID/gr }++ } @bad;
    ok kill(0, $server->pid), 'forumd is still running';
    unlike $server->log, qr/" 500 /, 'no 500 in the access log';
    note sprintf '%d posts (%d answered 503), %d messages (%d "unavailable")', scalar(keys %post_acked), $posts_503,
        scalar(keys %chat_acked), $chat_503;

    # nothing acknowledged is lost, and nothing resent is stored twice
    my %posts = map { $_->[0] => [$_->[1], $_->[2]] }
        $server->db_query('SELECT client_id, count(*), min(id) FROM posts WHERE author_id = ? GROUP BY client_id', $alice->{id});
    my @missing = grep { !$posts{$_} || $post_acked{$_} && $posts{$_}[1] != $post_acked{$_} } sort keys %post_acked;
    ok !@missing, 'every post answered 201 is in the database, under the id it was answered with' or diag explain \@missing;
    my @twice = grep { $posts{$_}[0] != 1 } keys %posts;
    ok !@twice, 'no post stored twice' or diag explain \@twice;
    my %msgs = map { $_->[0] => [$_->[1], $_->[2]] }
        $server->db_query('SELECT client_id, count(*), min(id) FROM messages WHERE sender_id = ? GROUP BY client_id', $alice->{id});
    @missing = grep { !$msgs{$_} || $msgs{$_}[1] != $chat_acked{$_} } sort keys %chat_acked;
    ok !@missing, 'every acknowledged message is in the database, under the id it was acknowledged with' or diag explain \@missing;
    @twice = grep { $msgs{$_}[0] != 1 } keys %msgs;
    ok !@twice, 'no message stored twice' or diag explain \@twice;
    my @resent = grep { $post_attempts{$_} > 1 } keys %post_attempts;
    my @resent_chat = grep { $chat_attempts{$_} > 1 } keys %chat_attempts;
    note scalar(@resent) . ' posts and ' . scalar(@resent_chat) . ' messages were resent';
    cmp_ok scalar(@resent) + scalar(@resent_chat), '>', 0, 'some sends were answered 503 and resent (the faults met traffic)';
    ok !$ws->{closed}, 'the WebSocket stayed open throughout' or diag explain $ws->{closed};
    note grep { /to PostgreSQL (?:lost|is back)/ } split /^/, $server->log;
    $ws->close;
    is $server->stop, 0, 'forumd stops cleanly';
};

done_testing;
