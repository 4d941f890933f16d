# Several nodes over one PostgreSQL and one Redis (bus: in forum.yaml), PostgreSQL only: a message sent on one
# node reaches every tab of both users on every node, once and in id order, whichever nodes the two send from;
# a client_id retried on another node stores nothing twice; a client of a node that died resumes on another
# with ?after=; new posts, and logout, reach every node; the feed is never stale on a node that did not write;
# and when Redis goes away and comes back, nothing acknowledged is lost: messages keep arriving from the
# database, the log and /_status say so, and every node catches up when the bus is back.
use strict;
use warnings;
use lib '.';
use File::Temp qw(tempdir);
use Test::More;
use Time::HiRes qw(sleep time);
use t::Util;
use File::Copy ();
use Net::EmptyPort ();

plan skip_all => 'PostgreSQL only (the nodes of one forum share its database): set FORUMD_TEST_POSTGRES, as make test does'
    unless backend() eq 'postgres';
plan skip_all => 'redis-server is not installed (make deps installs it)' unless -x '/usr/bin/redis-server';

my $redis = spawn_redis();
my $db = tempdir(CLEANUP => 1) . '/forum.db';
# limits small enough to reach: they hold for the forum, not per node
my $SETTINGS = "auth:\n  scrypt-n: 1024\n  login-limit: 3\n  login-window: 60\nrooms:\n  rate-burst: 12\n  rate-refill-ms: 60000";

sub node {
    my ($n, %o) = @_;
    return spawn_forumd(settings => $SETTINGS, db => $db, extra => "bus:\n  redis: \"" . $redis->addr . "\"\nnode: web-$n\n", %o);
}

subtest 'three nodes started at once on a new database: each migration runs once' => sub {
    my $fresh = tempdir(CLEANUP => 1) . '/fresh.db';
    my @n = map { spawn_forumd(settings => $SETTINGS, db => $fresh, nowait => 1,
                               extra => "bus:\n  redis: \"" . $redis->addr . "\"\nnode: fresh-$_\n") } 1 .. 3;
    $_->wait_ready for @n;
    my $logs = join '', map { $_->log } @n;
    my @applied = $logs =~ /: applied schema migration \d+/g;
    my $rows = db_value($fresh, 'SELECT COUNT(*) FROM forum_migrations');
    is scalar(@applied), $rows, "the three logs name $rows migrations applied, as many as the database records";
    my %times;
    ++$times{$_} for $logs =~ /(\w+: applied schema migration \d+)/g;
    is scalar(grep { $_ > 1 } values %times), 0, 'none twice';
    unlike $logs, qr/migration \d+ failed|error/, 'and no node failed';
    $_->stop for @n;
};

my @node = map { node($_) } 1 .. 3;

sub status { curl_json('curl -s --max-time 10', 'GET', $_[0]->url . '/_status')->{json} }

sub wait_until {
    my ($cond, $timeout) = @_;
    my $deadline = time + $timeout;
    until ($cond->()) {
        return 0 if time > $deadline;
        sleep 0.05;
    }
    return 1;
}

my (%jar, %id);
for my $name (qw(alice bob carol)) {
    $jar{$name} = tempdir(CLEANUP => 1) . '/jar';
    my $res = curl_json('curl -s', 'POST', $node[0]->url . '/api/auth/register', cookie_jar => $jar{$name},
                        json => { nickname => $name, email => "$name\@example.org", password => 'password1', first_name => 'F',
                                  last_name => 'L', age => 33, gender => 'other' });
    die $res->{body} unless $res->{status} == 201;
    $id{$name} = $res->{json}{user}{id};
}

sub ws {
    my ($name, $node, $query) = @_;
    my $ws = ws_connect('ws://127.0.0.1:' . $node->port . '/ws' . ($query // ''), cookie => cookie_of($jar{$name}));
    die "ws for $name: $ws->{error}" if $ws->{error};
    $ws->{hello} = $ws->wait_for('hello');
    return $ws;
}

sub api {
    my ($name, $node, $method, $path, $json) = @_;
    return curl_json('curl -s', $method, $node->url . $path, cookie_jar => $jar{$name}, (defined $json ? (json => $json) : ()));
}

# every message frame that arrives on $ws until it has $n or $timeout seconds pass
sub messages {
    my ($ws, $n, $timeout) = @_;
    my @got;
    while (@got < $n) {
        my $m = $ws->wait_for('message', $timeout // 10) or last;
        push @got, $m->{message};
    }
    return @got;
}

subtest 'a Redis that does not answer at start stops the node with one line' => sub {
    my $closed = Net::EmptyPort::empty_port();
    my $s = spawn_forumd(settings => $SETTINGS, db => $db, extra => "bus:\n  redis: \"127.0.0.1:$closed\"\n", expect_fail => 1);
    is $s->{exit}, 1, 'exit 1';
    like $s->log, qr/^cannot connect to Redis at 127\.0\.0\.1:$closed: Connection refused$/m, 'saying which Redis and why';
};

subtest 'each node names itself and its bus in /_status' => sub {
    for my $i (0 .. 2) {
        my $s = status($node[$i]);
        is $s->{node}, 'web-' . ($i + 1), "node $i: its name";
        ok wait_until(sub { (status($node[$i])->{bus}{state} // '') eq 'up' }, 10), "node $i: the bus is up";
        is $s->{bus}{redis}, $redis->addr, 'with the Redis it was given';
    }
    like $node[0]->log, qr/bus: connected to Redis at \Q${\ $redis->addr }\E as node web-1/, 'the log says where it connected';
};

sub order_counts { map { status($_)->{bus}{order} } @node }

subtest 'a conversation across three nodes: every tab gets every message once, in id order' => sub {
    my @before = order_counts();
    my @tabs = (ws('alice', $node[0]), ws('alice', $node[2]), ws('bob', $node[1]), ws('bob', $node[2]));
    my ($a_send, $b_send) = (ws('alice', $node[0]), ws('bob', $node[1]));
    push @tabs, $a_send, $b_send;
    # both send at once, each from the node of one of their tabs: their messages interleave in the database
    for my $i (1 .. 40) {
        $a_send->send({ type => 'message.send', to => $id{bob}, body => "a$i", client_id => "a-$i" });
        $b_send->send({ type => 'message.send', to => $id{alice}, body => "b$i", client_id => "b-$i" });
    }
    my @ids_of_tab;
    for my $t (@tabs) {
        my @got = messages($t, 80);
        push @ids_of_tab, [map { $_->{id} } @got];
        is scalar(@got), 80, 'a tab got all 80 messages';
        my %seen;
        is scalar(grep { $seen{$_->{id}}++ } @got), 0, 'none twice';
        is_deeply [map { $_->{id} } @got], [sort { $a <=> $b } map { $_->{id} } @got], 'in id order';
        is_deeply [grep { /^a/ } map { $_->{body} } @got], [map { "a$_" } 1 .. 40], "alice's in the order she sent them";
        is scalar $t->collect('message', 0.3), 0, 'and nothing more';
    }
    is_deeply $ids_of_tab[$_], $ids_of_tab[0], "tab $_ saw the same sequence as tab 0" for 1 .. $#tabs;
    my $stored = db_value($db, 'SELECT COUNT(*) FROM messages WHERE client_id LIKE ? OR client_id LIKE ?', 'a-%', 'b-%');
    is $stored, 80, 'the database holds the 80, each once';
    # each message went whole on the bus, its two frames (sender's, recipient's) delivered in order by every node
    my @after = order_counts();
    for my $i (0 .. 2) {
        cmp_ok $after[$i]{delivered} - $before[$i]{delivered}, '>=', 160, "node $i delivered the 160 frames from the announcements";
        is $after[$i]{gaps}, $before[$i]{gaps}, "node $i met no gap";
        is $after[$i]{held}, 0, "node $i holds nothing back";
    }
    $_->close for @tabs;
};

subtest 'typing, the lobby and user.created reach every node' => sub {
    my $al = ws('alice', $node[0]);
    my @bo = (ws('bob', $node[1]), ws('bob', $node[2]));
    my $c = ws('carol', $node[2]);
    $al->send({ type => 'typing', to => $id{bob}, active => \1 });
    for my $t (@bo) {
        my $ev = $t->wait_for('typing');
        is_deeply $ev, { type => 'typing', from => $id{alice}, active => JSON::PP::true }, "alice's typing reaches bob's tab on another node";
    }
    is scalar $c->collect('typing', 0.3), 0, 'and nobody else';
    for my $i (1 .. 5) {
        $al->send({ type => 'room.send', room => 1, body => "lobby $i", client_id => "lobby-$i" });
        $bo[0]->send({ type => 'room.send', room => 1, body => "lobby bob $i", client_id => "lobby-bob-$i" });
    }
    my @seq;
    for my $t ($al, @bo, $c) {
        my @got;
        while (@got < 10) {
            my $m = $t->wait_for('room.message', 10) or last;
            push @got, $m->{message};
        }
        is scalar(@got), 10, 'a lobby tab got all 10 room messages';
        is_deeply [map { $_->{id} } @got], [sort { $a <=> $b } map { $_->{id} } @got], 'in id order';
        is scalar $t->collect('room.message', 0.3), 0, 'none twice';
        push @seq, [map { $_->{id} } @got];
    }
    is_deeply $seq[$_], $seq[0], "lobby tab $_ saw the same sequence" for 1 .. $#seq;
    my $res = curl_json('curl -s', 'POST', $node[1]->url . '/api/auth/register', cookie_jar => tempdir(CLEANUP => 1) . '/jar',
                        json => { nickname => 'dave', email => 'dave@example.org', password => 'password1', first_name => 'F',
                                  last_name => 'L', age => 33, gender => 'other' });
    is $res->{status}, 201, 'dave registers on node 2';
    for my $t ($al, $c) {
        my $ev = $t->wait_for('user.created');
        is $ev && $ev->{user}{nickname}, 'dave', 'user.created reaches a client of another node';
    }
    $_->close for $al, @bo, $c;
};

subtest 'a client_id retried on another node is answered with the message stored the first time' => sub {
    my $a1 = ws('alice', $node[0]);
    my $a2 = ws('alice', $node[1]);
    $a1->send({ type => 'message.send', to => $id{carol}, body => 'only once', client_id => 'retry-1' });
    my $first = $a1->wait_for('message')->{message};
    is $a2->wait_for('message')->{message}{id}, $first->{id}, 'her tab on node 2 got it too';
    $a2->send({ type => 'message.send', to => $id{carol}, body => 'only once', client_id => 'retry-1' });
    my $again = $a2->wait_for('message')->{message};
    is $again->{id}, $first->{id}, 'the retry on node 2 is answered with the first message';
    my $hist = api('carol', $node[2], 'GET', "/api/messages/$id{alice}")->{json}{messages};
    is scalar(grep { $_->{body} eq 'only once' } @$hist), 1, 'stored once';
    $_->close for $a1, $a2;
};

subtest 'post.created and user.created reach every node; the feed is fresh on a node that did not write' => sub {
    my @ws = (ws('carol', $node[1]), ws('carol', $node[2]));
    my $before = api('carol', $node[2], 'GET', '/api/posts')->{json}; # cached on node 3 now
    my $res = api('alice', $node[0], 'POST', '/api/posts', { title => 'From node 1', body => 'hello every node', categories => ['general'] });
    is $res->{status}, 201, 'a post on node 1';
    for my $w (@ws) {
        my $ev = $w->wait_for('post.created');
        is $ev && $ev->{post}{id}, $res->{json}{post}{id}, 'post.created reaches a client of another node';
        is scalar $w->collect('post.created', 0.3), 0, 'once';
    }
    my $after = api('carol', $node[2], 'GET', '/api/posts')->{json};
    is $after->{posts}[0]{id}, $res->{json}{post}{id}, "node 3's feed has it at once";
    my $com = api('bob', $node[1], 'POST', "/api/posts/$res->{json}{post}{id}/comments", { body => 'a comment from node 2' });
    is $com->{status}, 201, 'a comment on node 2';
    my $ev = $ws[1]->wait_for('comment.created');
    is $ev && $ev->{comment}{body}, 'a comment from node 2', 'comment.created reaches a client of node 3';
    my $page = api('carol', $node[0], 'GET', "/api/posts/$res->{json}{post}{id}/comments")->{json};
    is scalar(@{ $page->{comments} // [] }), 1, "node 1's comment list has it at once";
    $_->close for @ws;
};

subtest 'logout on node 1 closes the WebSockets of that session on node 3' => sub {
    my $jar = tempdir(CLEANUP => 1) . '/jar';
    my $res = curl_json('curl -s', 'POST', $node[0]->url . '/api/auth/login', cookie_jar => $jar,
                        json => { login => 'carol', password => 'password1' });
    is $res->{status}, 200, 'carol logs in a second time';
    my $ws = ws_connect('ws://127.0.0.1:' . $node[2]->port . '/ws', cookie => cookie_of($jar));
    ok $ws->wait_for('hello'), 'with a WebSocket on node 3';
    my $other = ws('carol', $node[2]); # her first session
    curl_json('curl -s', 'POST', $node[0]->url . '/api/auth/logout', cookie_jar => $jar);
    ok $ws->wait_closed(5), 'the logout on node 1 closed it';
    ok !$other->{closed}, 'her other session stays';
    $other->close;
};

subtest 'rate limits hold for the forum, not per node' => sub {
    my @codes = map {
        curl_json('curl -s', 'POST', $node[$_ % 3]->url . '/api/auth/login', json => { login => 'alice', password => 'wrong password' })->{status}
    } 0 .. 2;
    is_deeply \@codes, [401, 401, 401], 'three wrong passwords for alice, one on each node';
    my $res = curl_json('curl -si', 'POST', $node[0]->url . '/api/auth/login', json => { login => 'alice', password => 'wrong password' });
    is $res->{status}, 429, 'the fourth, on node 1, which saw only one: 429';
    like $res->{body} // '', qr/rate_limited/, 'rate_limited';

    my @ws = (ws('carol', $node[0]), ws('carol', $node[1]), ws('carol', $node[2]));
    my $refused = 0;
    for my $i (1 .. 15) {
        my $w = $ws[$i % 3];
        $w->send({ type => 'room.send', room => 1, body => "limited $i", client_id => "limited-$i" });
        my $err = $w->wait_for('error', 0.5);
        ++$refused if $err && $err->{code} eq 'rate_limited';
    }
    is $refused, 3, 'carol sends 15 lobby messages over three nodes: the 12 of the burst go, 3 are refused';
    $_->close for @ws;
};

subtest 'a client of a node that died resumes on another with ?after=' => sub {
    my $bo = ws('bob', $node[0]);
    my $al = ws('alice', $node[1]);
    $al->send({ type => 'message.send', to => $id{bob}, body => 'before', client_id => 'die-1' });
    my $last = $bo->wait_for('message')->{message}{id};
    kill 'KILL', $node[0]->pid;
    waitpid($node[0]->pid, 0);
    delete $node[0]{pid};
    $al->send({ type => 'message.send', to => $id{bob}, body => "after $_", client_id => "die-after-$_" }) for 1 .. 3;
    is scalar(messages($al, 3)), 3, 'alice sends three while node 1 is down';
    my $bo2 = ws('bob', $node[2], "?after=$last");
    is_deeply [map { $_->{body} } messages($bo2, 3)], ['after 1', 'after 2', 'after 3'], 'bob, back on node 3, gets the three';
    is scalar $bo2->collect('message', 0.3), 0, 'and nothing twice';
    $_->close for $al, $bo2;
    $node[0] = node(1);
};

# presence frames about $user that reach $ws within $seconds: [online, ...]
sub presence_of {
    my ($ws, $user, $seconds) = @_;
    my @all = $ws->collect('presence', $seconds);
    # frames about others are not these tests' business
    return [map { $_->{online} ? 1 : 0 } grep { $_->{user_id} == $user } @all];
}

sub online_in_list {
    my ($who, $node, $user) = @_;
    my ($u) = grep { $_->{id} == $user } @{ api($who, $node, 'GET', '/api/users?limit=200')->{json}{users} };
    return $u && $u->{online} ? 1 : 0;
}

subtest 'presence: online once across nodes, offline with the last connection anywhere, or when its node dies' => sub {
    my $bo = ws('bob', $node[2]);
    my $a1 = ws('alice', $node[0]);
    my $a2 = ws('alice', $node[1]);
    is_deeply presence_of($bo, $id{alice}, 1), [1], 'bob, on node 3, hears once that alice came online (tabs on nodes 1 and 2)';
    is online_in_list('bob', $node[2], $id{alice}), 1, 'the users list on node 3 shows her online';
    $a1->close;
    is_deeply presence_of($bo, $id{alice}, 1), [], 'her tab on node 1 closing changes nothing: she is on node 2';
    is online_in_list('carol', $node[0], $id{alice}), 1, 'node 1, where she has no tab now, still lists her online';
    $a2->close;
    is_deeply presence_of($bo, $id{alice}, 2), [0], 'her last tab closing takes her offline, once';
    is online_in_list('bob', $node[2], $id{alice}), 0, 'and the list says so';

    my $c = ws('carol', $node[1]);
    is_deeply presence_of($bo, $id{carol}, 1), [1], 'carol comes online on node 2';
    my $t0 = time;
    kill 'KILL', $node[1]->pid;
    waitpid($node[1]->pid, 0);
    delete $node[1]{pid};
    my $off;
    ok wait_until(sub { push @$off, @{ presence_of($bo, $id{carol}, 0.2) }; @$off }, 15), 'node 2 killed: carol goes offline';
    is_deeply $off, [0], 'once';
    cmp_ok time - $t0, '<', 10, 'within the time a dead node is given (its key lives 5 s)';
    is online_in_list('bob', $node[2], $id{carol}), 0, 'the list on node 3 says so';
    $node[1] = node(2);
    my $c2 = ws('carol', $node[1]);
    is_deeply presence_of($bo, $id{carol}, 1), [1], 'she is online again when she reconnects to the restarted node';
    $_->close for $bo, $c2;
};

subtest 'one node swaps its chat plugin, then restarts gracefully, while the others serve: nothing is lost' => sub {
    my $n4 = node(4, starter => 1, watch => 1, plugin_files => { chat => build_dir() . '/plugins/chat.so' });
    ok wait_until(sub { $n4->log =~ /forumd \S+ ready \(/ }, 30), 'node 4 runs under start_server';
    my $al = ws('alice', $node[0]);
    my $b4 = ws('bob', $n4);
    my $b3 = ws('bob', $node[2]);
    my $chat_gen = sub { (grep { $_->{name} eq 'chat' } @{ status($n4)->{plugins} })[0]{generation} };
    for my $i (1 .. 20) {
        $al->send({ type => 'message.send', to => $id{bob}, body => "swap $i", client_id => "swap-$i" });
        if ($i == 10) {
            my $tmp = "$n4->{plugin_dir}/.chat.so.new";
            File::Copy::copy(build_dir() . '/t-plugins/chat_v2.so', $tmp) or die "copy: $!";
            rename $tmp, "$n4->{plugin_dir}/chat.so" or die "rename: $!";
        }
        sleep 0.05;
    }
    ok wait_until(sub { ($chat_gen->() // 0) >= 2 }, 10), 'node 4 swapped chat in the middle (generation 2)';
    for my $t ($b4, $b3) {
        is_deeply [map { $_->{body} } messages($t, 20)], [map { "swap $_" } 1 .. 20], "bob's tab gets the 20, in order";
        is scalar $t->collect('message', 0.3), 0, 'once';
    }

    my $old = (`pgrep -P @{[ $n4->pid ]}` =~ /(\d+)/)[0];
    kill 'HUP', $n4->pid;
    my $closed = $b4->wait_closed(15);
    is $closed && $closed->[0], 1001, "bob's tab on node 4 is closed with 1001 as its old process leaves";
    $al->send({ type => 'message.send', to => $id{bob}, body => "restart $_", client_id => "restart-$_" }) for 1 .. 5;
    is_deeply [map { $_->{body} } messages($b3, 5)], [map { "restart $_" } 1 .. 5], 'meanwhile node 3 serves bob';
    ok wait_until(sub { my $p = (`pgrep -P @{[ $n4->pid ]}` =~ /(\d+)/)[0]; $p && $p != $old && $n4->log =~ /ready \(.*\n(?s:.*)ready \(/ }, 30),
        'a new process serves on node 4';
    my $last_seen = db_value($db, "SELECT id FROM messages WHERE client_id = 'swap-20'");
    my $again = ws('bob', $n4, "?after=$last_seen");
    is_deeply [map { $_->{body} } messages($again, 5)], [map { "restart $_" } 1 .. 5], 'bob, back on node 4, resumes with the five';
    is scalar $again->collect('message', 0.3), 0, 'once';
    $_->close for $al, $b3, $again;
    is $n4->stop, 0, 'node 4 stops';
};

subtest 'one node cut off from Redis for a moment: what it stored meanwhile still reaches the others' => sub {
    my $al = ws('alice', $node[1]);
    my $bo = ws('bob', $node[0]);
    # node 2's two connections to Redis, by the name each instance gives them
    my @ids = map { /\bid=(\d+)\b.*\bname=forumd:web-2\// ? $1 : () } split /\n/, $redis->cli('CLIENT', 'LIST');
    is scalar(@ids), 2, "node 2's two connections are named in CLIENT LIST";
    $redis->cli('CLIENT', 'KILL', 'ID', $_) for @ids;
    ok wait_until(sub { (status($node[1])->{bus}{state} // '') ne 'up' }, 5), 'node 2 lost the bus';
    $al->send({ type => 'message.send', to => $id{bob}, body => 'while node 2 was cut off', client_id => 'cut-1' });
    is $al->wait_for('message')->{message}{body}, 'while node 2 was cut off', "alice's own tab on node 2 has it";
    my $m = $bo->wait_for('message', 10);
    is $m && $m->{message}{body}, 'while node 2 was cut off', 'bob, on node 1, gets it once node 2 is back: it rings every node';
    is scalar $bo->collect('message', 0.5), 0, 'once';
    $_->close for $al, $bo;
};

subtest 'a message nobody announced holds the ones after it for a moment, then is read from the database' => sub {
    my $al = ws('alice', $node[1]);
    my $bo = ws('bob', $node[0]);
    my $c = ws('carol', $node[2]);
    my @before = order_counts();
    my @ids = map { /\bid=(\d+)\b.*\bname=forumd:web-2\// ? $1 : () } split /\n/, $redis->cli('CLIENT', 'LIST');
    $redis->cli('CLIENT', 'KILL', 'ID', $_) for @ids;
    ok wait_until(sub { (status($node[1])->{bus}{state} // '') ne 'up' }, 5), 'node 2 lost the bus';
    # stored on node 2 while it cannot announce it; then carol's, on node 3, comes after it in the sequence
    $al->send({ type => 'message.send', to => $id{bob}, body => 'unannounced', client_id => 'gap-1' });
    is $al->wait_for('message')->{message}{body}, 'unannounced', "alice's tab on node 2 has hers";
    $c->send({ type => 'message.send', to => $id{bob}, body => 'after the gap', client_id => 'gap-2' });
    is $c->wait_for('message', 10)->{message}{body}, 'after the gap', "carol's tab on node 3 has hers";
    my @got = messages($bo, 2);
    is_deeply [map { $_->{body} } @got], ['unannounced', 'after the gap'], 'bob, on node 1, gets both, in id order';
    cmp_ok $got[0]{id}, '<', $got[1]{id}, 'ids ascending';
    is scalar $bo->collect('message', 0.5), 0, 'each once';
    ok wait_until(sub { !grep { (status($_)->{bus}{state} // '') ne 'up' } @node }, 15), 'every bus is up again';
    for my $i (0, 2) {
        ok wait_until(sub { status($node[$i])->{bus}{order}{gaps} > $before[$i]{gaps} }, 5), "node $i gave up waiting for it";
        is status($node[$i])->{bus}{order}{gaps}, $before[$i]{gaps} + 1, 'once';
    }
    like $node[0]->log, qr/bus: messages \d+ to \d+ were not announced/, "node 1's log names it";
    $_->close for $al, $bo, $c;
};

subtest 'Redis gone, then back: messages still arrive, and every node says so' => sub {
    my $al = ws('alice', $node[0]);
    my $bo = ws('bob', $node[1]);
    my $c = ws('carol', $node[2]);
    my $catch_ups = status($node[1])->{bus}{catch_ups};
    $redis->kill;
    ok wait_until(sub { (status($node[1])->{bus}{state} // '') eq 'down' }, 10), "node 2's bus is down";
    like $node[1]->log, qr/bus: lost Redis at /, 'and its log says so';
    $al->send({ type => 'message.send', to => $id{bob}, body => "while down $_", client_id => "down-$_" }) for 1 .. 5;
    is_deeply [map { $_->{body} } messages($bo, 5)], [map { "while down $_" } 1 .. 5], 'bob on node 2 gets them, from the database';
    is_deeply [map { $_->{body} } messages($al, 5)], [map { "while down $_" } 1 .. 5], 'alice on node 1 too';
    $redis->start;
    ok wait_until(sub { !grep { (status($_)->{bus}{state} // '') ne 'up' } @node }, 15), 'every bus is up again';
    is status($node[1])->{bus}{catch_ups}, $catch_ups + 1, 'node 2 caught up once more';
    # the new Redis knows nothing: each node tells it who is on it again
    ok wait_until(sub { online_in_list('carol', $node[2], $id{alice}) }, 5), "node 3 lists alice (on node 1) online again";
    like $node[1]->log, qr/bus: Redis at \S+ is back after \d+ ms; every connection catches up from the database/, 'and says so';
    $al->send({ type => 'message.send', to => $id{carol}, body => 'bus back', client_id => 'back-1' });
    is $c->wait_for('message')->{message}{body}, 'bus back', 'a message from node 1 reaches node 3 again';
    is scalar($bo->collect('message', 0.5)), 0, 'and nothing came twice';
    $_->close for $al, $bo, $c;
};

done_testing;
