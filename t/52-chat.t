# Private messages (plugin chat): the users list, its order and its pages, presence, delivery to every tab of
# both users, offline delivery, idempotent client_id, history pages, read state, typing, resume
# after a disconnect and after a restart, and every bad frame.
use strict;
use warnings;
use lib '.';
use File::Temp qw(tempdir);
use Test::More;
use Time::HiRes qw(sleep);
use t::Util;

my $db_dir = tempdir(CLEANUP => 1);
my %opts = (settings => "auth:\n  scrypt-n: 1024", db => "$db_dir/forum.db");
my $server = spawn_forumd(%opts);

my (%jar, %id);
for my $name (qw(zed alice Bob carol dave)) {
    $jar{$name} = tempdir(CLEANUP => 1) . '/jar';
    my $res = curl_json('curl -s', 'POST', $server->url . '/api/auth/register', cookie_jar => $jar{$name},
                        json => { nickname => $name, email => "$name\@example.org", password => 'password1', first_name => 'F',
                                  last_name => 'L', age => 33, gender => 'other' });
    die $res->{body} unless $res->{status} == 201;
    $id{$name} = $res->{json}{user}{id};
}

sub ws {
    my ($name, $query) = @_;
    my $ws = ws_connect('ws://127.0.0.1:' . $server->port . '/ws' . ($query // ''), cookie => cookie_of($jar{$name}));
    die "ws for $name: $ws->{error}" if $ws->{error};
    $ws->{hello} = $ws->wait_for('hello');
    return $ws;
}

sub api {
    my ($name, $method, $path, $json) = @_;
    return curl_json('curl -s', $method, $server->url . $path, cookie_jar => $jar{$name}, (defined $json ? (json => $json) : ()));
}

my $cid = 0;
sub send_msg {
    my ($ws, $to, $body, %extra) = @_;
    my $client_id = $extra{client_id} // 'c' . ++$cid;
    $ws->send({ type => 'message.send', to => $id{$to} // $to, body => $body, client_id => $client_id, %extra });
    return $client_id;
}

sub users_of { [map { $_->{nickname} } @{ api($_[0], 'GET', '/api/users')->{json}{users} }] }

subtest 'the users list before any message: everyone else by nickname, case-insensitive' => sub {
    is_deeply users_of('alice'), [qw(Bob carol dave zed)], 'alice sees the others A to Z, herself left out';
    my $page = api('alice', 'GET', '/api/users')->{json};
    is_deeply [sort keys %$page], [qw(next users)], 'a page: users and next';
    is $page->{next}, undef, 'next is null: everyone fits the default limit';
    my $two = api('alice', 'GET', '/api/users?limit=2')->{json};
    is_deeply [map { $_->{nickname} } @{ $two->{users} }], [qw(Bob carol)], 'limit=2: the first two';
    my $rest = api('alice', 'GET', "/api/users?limit=2&after=$two->{next}")->{json};
    is_deeply [map { $_->{nickname} } @{ $rest->{users} }], [qw(dave zed)], 'after=next: the two after them';
    my $u = $page->{users}[0];
    is_deeply [sort keys %$u], [sort qw(id nickname online last_message_at last_message_id last_message_preview unread)], 'each with its fields';
    is $u->{last_message_at}, undef, 'no last message yet';
    is $u->{last_message_preview}, undef, 'so no preview';
    is $u->{unread}, 0, 'nothing unread';
};

subtest 'hello, delivery to every tab of both users, and presence' => sub {
    my $a1 = ws('alice');
    is $a1->{hello}{user}{id}, $id{alice}, 'hello has the user';
    is $a1->{hello}{last_message_id}, 0, 'and last_message_id 0 with no messages';
    my $a2 = ws('alice');
    my $b1 = ws('Bob');
    my $b2 = ws('Bob');
    my $online = { map { $_->{nickname} => $_->{online} } @{ api('carol', 'GET', '/api/users')->{json}{users} } };
    ok $online->{alice} && $online->{Bob}, 'alice and Bob are online';
    ok !$online->{dave}, 'dave is not';

    $a1->send({ type => 'typing', to => $id{Bob}, active => \1 });
    is_deeply $b1->wait_for('typing'), { type => 'typing', from => $id{alice}, active => JSON::PP::true }, 'alice is typing';
    my $client_id = send_msg($a1, 'Bob', "  hello Bob \x{1F44B}  ", from => $id{carol});
    my @got = map { $_->wait_for('message') } $a1, $a2, $b1, $b2;
    ok((4 == grep { defined } @got), 'the message reaches both tabs of both users');
    my $m = $got[0]{message};
    is $m->{body}, "hello Bob \x{1F44B}", 'trimmed body';
    is $m->{from}, $id{alice}, 'from the session user, never the payload\'s "from"';
    is $m->{to}, $id{Bob}, 'to Bob';
    like $m->{created_at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'created_at';
    is $got[0]{message}{client_id}, $client_id, 'the sender\'s copy carries client_id';
    is $got[1]{message}{client_id}, $client_id, 'on every tab of the sender';
    ok !exists $got[2]{message}{client_id}, 'the recipient\'s copy does not';
    is_deeply [map { $_->{message}{id} } @got], [($m->{id}) x 4], 'one message, one id';

    my $typing = $b1->wait_for('typing');
    is_deeply $typing, { type => 'typing', from => $id{alice}, active => JSON::PP::false }, 'sending stops the typing indicator';
    $_->close for $a1, $a2, $b1, $b2;
};

subtest 'offline delivery and a duplicate client_id' => sub {
    my $c = ws('carol');
    send_msg($c, 'dave', 'are you there?', client_id => 'same-id');
    my $first = $c->wait_for('message')->{message};
    send_msg($c, 'dave', 'are you there? (again)', client_id => 'same-id');
    my $again = $c->wait_for('message')->{message};
    is_deeply $again, $first, 'a repeated client_id returns the stored message, unchanged';
    my $z = ws('zed');
    send_msg($z, 'dave', 'from zed', client_id => 'same-id');
    my $zm = $z->wait_for('message')->{message};
    isnt $zm->{id}, $first->{id}, 'the same client_id from another sender is another message';

    my $d = ws('dave', '?after=0');
    my @replayed = map { $d->wait_for('message')->{message} } 1 .. 2;
    is_deeply [map { $_->{id} } @replayed], [$first->{id}, $zm->{id}], 'dave, offline then, gets both on connecting with after=0';
    is scalar $d->collect('message', 0.5), 0, 'and nothing twice';
    my $hist = api('dave', 'GET', "/api/messages/$id{carol}")->{json}{messages};
    is scalar @$hist, 1, 'the duplicate was stored once';
    $_->close for $c, $z, $d;
};

subtest 'frames read together are stored together, a repeat among them answered once stored' => sub {
    my $c = ws('carol');
    # sent without running the loop in between: one write, one read on the server, one batch
    send_msg($c, 'dave', 'batched one', client_id => 'batch-1');
    send_msg($c, 'dave', 'batched two', client_id => 'batch-2');
    send_msg($c, 'dave', 'batched one, sent again', client_id => 'batch-1');
    my @got = map { $c->wait_for('message')->{message} } 1 .. 3;
    is_deeply [map { $_->{client_id} } @got], ['batch-1', 'batch-2', 'batch-1'], 'three answers, in order';
    ok $got[0]{id} && $got[0]{id} < $got[1]{id}, 'the first two stored in order';
    is_deeply $got[2], $got[0], 'the repeat gets the message it repeats, unchanged';
    is scalar $c->collect('message', 0.3), 0, 'and nothing more';
    my $hist = api('dave', 'GET', "/api/messages/$id{carol}")->{json}{messages};
    is_deeply [sort grep { /^batched/ } map { $_->{body} } @$hist], ['batched one', 'batched two'], 'two messages stored';
    $c->close;
};

# Sends read in one loop turn are stored as one batch, in a few statements of many rows: the counts behind the
# unread numbers (how many each side has sent) must come out as they do one message at a time.
subtest 'bursts both ways stored together: unread counts and read marks stay exact' => sub {
    my ($wa, $wd) = (ws('alice'), ws('dave'));
    my $unread = sub {
        my ($who, $of) = @_;
        (grep { $_->{nickname} eq $of } @{ api($who, 'GET', '/api/users')->{json}{users} })[0]{unread};
    };
    # messages before the bursts, one at a time and all read: the counts a batch adds to are not zero
    for ([$wa, 'dave'], [$wd, 'alice'], [$wa, 'dave']) {
        send_msg($_->[0], $_->[1], 'before');
        $_->[0]->wait_for('message');
    }
    $_->collect('message', 0.3) for $wa, $wd;
    api('alice', 'POST', "/api/messages/$id{dave}/read", { up_to => 1e12 });
    api('dave', 'POST', "/api/messages/$id{alice}/read", { up_to => 1e12 });
    is $unread->('dave', 'alice') + $unread->('alice', 'dave'), 0, 'nothing unread before';
    # each burst goes out in one write; the two connections' bursts meet in the server's same turns
    my @cids = ((map { send_msg($wa, 'dave', "a$_") } 1 .. 5), (map { send_msg($wd, 'alice', "d$_") } 1 .. 3),
                (map { send_msg($wa, 'dave', "a$_") } 6 .. 7));
    # each connection gets its own messages back and the other's: the ones a user sent, as its own connection got them
    my $own = sub {
        my ($ws, $me, $n) = @_;
        my @got;
        while (@got < $n) {
            my $m = ($ws->wait_for('message') // last)->{message};
            push @got, $m if $m->{from} == $id{$me};
        }
        $ws->collect('message', 0.3);
        return \@got;
    };
    my %mine = (alice => $own->($wa, 'alice', 7), dave => $own->($wd, 'dave', 3));
    is_deeply [map { $_->{client_id} } @{ $mine{alice} }, @{ $mine{dave} }], [@cids[0 .. 4, 8, 9, 5 .. 7]], 'every send answered';
    is $unread->('dave', 'alice'), 7, 'dave has the 7 of alice unread';
    is $unread->('alice', 'dave'), 3, 'alice has the 3 of dave unread';
    my @from_alice = sort { $a->{id} <=> $b->{id} } @{ $mine{alice} };
    is api('dave', 'POST', "/api/messages/$id{alice}/read", { up_to => $from_alice[2]{id} })->{status}, 204, 'dave reads up to her third';
    is $unread->('dave', 'alice'), 4, 'four of hers left';
    my @from_dave = sort { $a->{id} <=> $b->{id} } @{ $mine{dave} };
    is api('alice', 'POST', "/api/messages/$id{dave}/read", { up_to => $from_dave[0]{id} })->{status}, 204, 'alice reads his first';
    is $unread->('alice', 'dave'), 2, 'two of his left';
    is api('dave', 'POST', "/api/messages/$id{alice}/read", { up_to => $from_alice[5]{id} })->{status}, 204, 'dave reads up to her sixth';
    is $unread->('dave', 'alice'), 1, 'one left';
    my $hist = api('dave', 'GET', "/api/messages/$id{alice}")->{json}{messages};
    my @sent = sort { $a <=> $b } map { $_->{id} } @from_alice, @from_dave;
    is_deeply [grep { $_ >= $sent[0] } map { $_->{id} } @$hist], \@sent, 'the history holds all ten, by id';
    $_->close for $wa, $wd;
};

subtest 'the users list order: latest conversation first, then the rest by nickname' => sub {
    my $wa = ws('alice');
    send_msg($wa, 'dave', 'one');
    $wa->wait_for('message');
    sleep 0.01;
    send_msg($wa, 'zed', 'two');
    $wa->wait_for('message');
    is_deeply users_of('alice'), [qw(zed dave Bob carol)], 'zed (newest), dave, Bob (older), then carol';
    my $carol_view = users_of('carol');
    is_deeply $carol_view, [qw(dave alice Bob zed)], 'carol: dave (her only conversation), then the others A to Z';
    my $d = ws('dave');
    send_msg($d, 'Bob', 'hi bob');
    $d->wait_for('message');
    is_deeply users_of('Bob'), [qw(dave alice carol zed)], 'a new message moves its sender to the top';
    my $users = api('dave', 'GET', '/api/users')->{json}{users};
    like $users->[0]{last_message_at}, qr/^\d{4}-/, 'last_message_at is set';
    $_->close for $wa, $d;
};

subtest 'unread counts and read marks' => sub {
    my $z = ws('zed');
    my @ids = map { send_msg($z, 'carol', "unread $_"); $z->wait_for('message')->{message}{id} } 1 .. 3;
    my $row = sub { (grep { $_->{nickname} eq 'zed' } @{ api('carol', 'GET', '/api/users')->{json}{users} })[0] };
    is $row->()->{unread}, 3, 'three unread from zed';
    is api('carol', 'POST', "/api/messages/$id{zed}/read", { up_to => $ids[1] })->{status}, 204, 'read up to the second';
    is $row->()->{unread}, 1, 'one left';
    my $c = ws('carol');
    $c->send({ type => 'read', with => $id{zed}, up_to => $ids[2] });
    $c->send({ type => 'ping' });
    $c->wait_for('pong');
    is $row->()->{unread}, 0, 'a read frame clears the rest';
    is api('carol', 'POST', "/api/messages/$id{zed}/read", { up_to => $ids[0] })->{status}, 204, 'an older mark';
    is $row->()->{unread}, 0, 'never moves the mark back';
    is((grep { $_->{nickname} eq 'carol' } @{ api('zed', 'GET', '/api/users')->{json}{users} })[0]{unread}, 0,
       'the sender has nothing unread for his own messages');
    is api('carol', 'POST', '/api/messages/999999/read', { up_to => 1 })->{status}, 404, 'read with a missing user: 404';
    is api('carol', 'POST', "/api/messages/$id{zed}/read", { up_to => 'x' })->{status}, 400, 'a bad up_to: 400';
    $_->close for $z, $c;
};

subtest 'history: pages of 10, oldest first, no gaps or repeats' => sub {
    my $wb = ws('Bob');
    my @sent = map { send_msg($wb, 'zed', "history $_"); $wb->wait_for('message')->{message}{id} } 1 .. 25;
    my (@seen, $before, @sizes);
    while (1) {
        my $res = api('zed', 'GET', "/api/messages/$id{Bob}" . (defined $before ? "?before=$before" : ''));
        my $msgs = $res->{json}{messages};
        push @sizes, scalar @$msgs;
        unshift @seen, map { $_->{id} } @$msgs;
        is_deeply [map { $_->{id} } @$msgs], [sort { $a <=> $b } map { $_->{id} } @$msgs], 'a page is oldest first' if @sizes == 1;
        last unless $res->{json}{has_more};
        $before = $msgs->[0]{id};
        last if @sizes > 10;
    }
    is_deeply [@sizes[0 .. 2]], [10, 10, 5], 'pages of 10, 10 and 5';
    is_deeply [grep { my $x = $_; grep { $_ == $x } @sent } @seen], \@sent, 'every message once, in order';
    my $res = api('zed', 'GET', "/api/messages/$id{Bob}?limit=50");
    ok !$res->{json}{has_more}, 'has_more is false when everything fits';
    is api('zed', 'GET', "/api/messages/$id{Bob}?limit=0")->{status}, 400, 'limit=0: 400';
    is api('zed', 'GET', "/api/messages/$id{Bob}?limit=51")->{status}, 400, 'limit=51: 400';
    is api('zed', 'GET', '/api/messages/999999')->{status}, 404, 'an unknown user: 404';
    is api('zed', 'GET', "/api/messages/$id{zed}")->{status}, 404, 'yourself: 404';
    $wb->close;
};

subtest 'typing: relayed, thinned when flooded, stopped when the typist leaves' => sub {
    my $wa = ws('alice');
    my $wb = ws('Bob');
    $wa->send({ type => 'typing', to => $id{Bob}, active => \1 });
    is_deeply $wb->wait_for('typing'), { type => 'typing', from => $id{alice}, active => JSON::PP::true }, 'typing reaches the other user';
    is scalar $wa->collect('typing', 0.3), 0, 'and not the typist';
    $wa->send({ type => 'typing', to => $id{Bob}, active => \1 }) for 1 .. 50;
    $wa->send({ type => 'ping' });
    ok $wa->wait_for('pong'), 'a flood of typing frames does not disconnect';
    my @relayed = $wb->collect('typing', 0.5);
    ok @relayed <= 1, 'and is thinned (' . scalar(@relayed) . ' relayed of 50)';
    $wa->send({ type => 'typing', to => $id{Bob}, active => \0 });
    is_deeply $wb->wait_for('typing'), { type => 'typing', from => $id{alice}, active => JSON::PP::false }, 'a change is relayed at once';
    $wa->send({ type => 'typing', to => $id{Bob}, active => \1 });
    $wb->wait_for('typing');
    $wa->close;
    is_deeply $wb->wait_for('typing'), { type => 'typing', from => $id{alice}, active => JSON::PP::false },
        'the typist\'s last connection closing stops the indicator';
    $wb->close;
};

subtest 'bad frames: an error each, nothing changes, the connection stays' => sub {
    my $wa = ws('alice');
    my $before = scalar @{ api('alice', 'GET', "/api/messages/$id{carol}?limit=50")->{json}{messages} };
    my @cases = (
        [{ type => 'message.send', to => $id{carol}, body => 'x' }, 'message.send', 'no client_id'],
        [{ type => 'message.send', to => $id{carol}, body => 'x', client_id => '' }, 'message.send', 'empty client_id'],
        [{ type => 'message.send', to => $id{carol}, body => 'x', client_id => 'y' x 65 }, 'message.send', 'client_id over 64'],
        [{ type => 'message.send', to => $id{carol}, body => 'x', client_id => 7 }, 'message.send', 'client_id not a string'],
        [{ type => 'message.send', body => 'x', client_id => 'e1' }, 'e1', 'no recipient'],
        [{ type => 'message.send', to => "$id{carol}", body => 'x', client_id => 'e2' }, 'e2', 'recipient as a string'],
        [{ type => 'message.send', to => 999999, body => 'x', client_id => 'e3' }, 'e3', 'unknown recipient'],
        [{ type => 'message.send', to => $id{alice}, body => 'x', client_id => 'e4' }, 'e4', 'to yourself'],
        [{ type => 'message.send', to => $id{carol}, client_id => 'e5' }, 'e5', 'no body'],
        [{ type => 'message.send', to => $id{carol}, body => '   ', client_id => 'e6' }, 'e6', 'blank body'],
        [{ type => 'message.send', to => $id{carol}, body => 'x' x 4001, client_id => 'e7' }, 'e7', 'body over 4000'],
        [{ type => 'message.send', to => $id{carol}, body => [1], client_id => 'e8' }, 'e8', 'body not a string'],
        [{ type => 'typing', to => $id{carol} }, 'typing', 'typing without active'],
        [{ type => 'typing', to => 'x', active => \1 }, 'typing', 'typing to a non-id'],
        [{ type => 'read', with => $id{carol} }, 'read', 'read without up_to'],
        [{ type => 'read', with => 999999, up_to => 1 }, 'read', 'read with an unknown user'],
        [{ type => 'nope' }, 'nope', 'an unknown type'],
    );
    for my $case (@cases) {
        $wa->send($case->[0]);
        my $err = $wa->wait_for('error');
        ok $err && $err->{code} && $err->{message}, "$case->[2]: an error frame";
        is $err && $err->{ref}, $case->[1], "  with ref $case->[1]";
    }
    $wa->send({ type => 'message.send', to => $id{carol}, body => 'x' x 4000, client_id => 'max' });
    is length($wa->wait_for('message')->{message}{body}), 4000, 'a body of exactly 4000 characters is fine';
    $wa->send({ type => 'ping' });
    ok $wa->wait_for('pong'), 'the connection stayed open';
    is scalar @{ api('alice', 'GET', "/api/messages/$id{carol}?limit=50")->{json}{messages} }, $before + 1, 'only the good one was stored';
    $wa->close;
};

subtest 'resume after a disconnect: nothing lost, nothing twice, in order' => sub {
    my $c = ws('carol');
    my $last = $c->{hello}{last_message_id};
    ok $last > 0, 'hello carries last_message_id';
    my $d = ws('dave');
    my @before = map { send_msg($d, 'carol', "before $_"); $d->wait_for('message')->{message}{id} } 1 .. 3;
    my @seen = map { $c->wait_for('message')->{message}{id} } 1 .. 3;
    is_deeply \@seen, \@before, 'carol sees them live';
    $c->close;
    my @missed = map { send_msg($d, 'carol', "missed $_"); $d->wait_for('message')->{message}{id} } 1 .. 4;
    my $back = ws('carol', "?after=$seen[-1]");
    send_msg($d, 'carol', 'live after reconnect');
    my $live = $d->wait_for('message')->{message}{id};
    my @got = map { $back->wait_for('message')->{message}{id} } 1 .. 5;
    is_deeply \@got, [@missed, $live], 'the missed messages in order, then live traffic';
    is scalar $back->collect('message', 0.5), 0, 'nothing twice';
    $_->close for $back, $d;
};

# On PostgreSQL a replay's reads suspend it: a message stored and published meanwhile leaves the catching-up
# connection out of live delivery, and the replay must read again before it ends, or that message is lost to it.
subtest 'a message sent while a reconnect catches up is never lost to it: 30 reconnects' => sub {
    my $d = ws('dave');
    my $lost = 0;
    for my $round (1 .. 30) {
        my $c = ws('carol');
        my @before = map { send_msg($d, 'carol', "before $round.$_"); $d->wait_for('message')->{message}{id} } 1 .. 3;
        my @seen = map { ($c->wait_for('message') // {})->{message}{id} // 0 } 1 .. 3;
        $c->close;
        my @missed = map { send_msg($d, 'carol', "missed $round.$_"); $d->wait_for('message')->{message}{id} } 1 .. 4;
        my $back = ws('carol', "?after=$seen[-1]");
        send_msg($d, 'carol', "live $round"); # arrives while carol's replay may still be reading
        my $live = $d->wait_for('message')->{message}{id};
        my @got = map { ($back->wait_for('message', 5) // {})->{message}{id} // 0 } 1 .. 5;
        $back->close;
        next if "@got" eq "@missed $live";
        diag "round $round: got @got, want @missed $live";
        ++$lost;
        last;
    }
    is $lost, 0, 'every reconnect got the missed messages, then the live one';
    $d->close;
};

subtest 'resume across a server restart' => sub {
    my $c = ws('carol');
    my $last = $c->{hello}{last_message_id};
    $c->close;
    my $d = ws('dave');
    my @missed = map { send_msg($d, 'carol', "across restart $_"); $d->wait_for('message')->{message}{id} } 1 .. 3;
    $d->close;
    is $server->stop, 0, 'the server stops';
    $server = spawn_forumd(%opts);
    my $back = ws('carol', "?after=$last");
    is $back->{hello}{last_message_id}, $missed[-1], 'the session and the messages survived the restart';
    my @got = map { $back->wait_for('message')->{message}{id} } 1 .. 3;
    is_deeply \@got, \@missed, 'and the missed messages are replayed';
    is scalar $back->collect('message', 0.5), 0, 'once';
    $back->close;
};

subtest 'a long replay is paced, complete and in order' => sub {
    my $z = ws('zed');
    my @ids;
    for my $i (1 .. 600) {
        send_msg($z, 'alice', "bulk $i " . ('x' x 500));
        # acknowledgements arrive in order; keep the sender a little ahead of them
        push @ids, $z->wait_for('message', 10)->{message}{id} while @ids < $i - 50;
    }
    push @ids, $z->wait_for('message', 10)->{message}{id} while @ids < 600;
    SKIP: {
        skip 'SQLite only: the WAL file is SQLite\'s (PostgreSQL recycles its own WAL at checkpoints)', 1
            unless $server->backend eq 'sqlite';
        # every commit may restart the WAL only when no statement holds a read open across it
        my $wal = -s "$opts{db}-wal" // 0;
        ok $wal < 8 * 1024 * 1024, "the WAL stays bounded after 600 messages (@{[ int($wal / 1024) ]} KiB)";
    }
    is_deeply \@ids, [sort { $a <=> $b } @ids], 'the sender\'s acknowledgements came in order';
    my $wa = ws('alice', "?after=0");
    my @got;
    while (my $m = $wa->wait_for('message', 5)) {
        push @got, $m->{message}{id};
    }
    my %dup;
    ok !grep({ $dup{$_}++ } @got), 'no message twice';
    is_deeply \@got, [sort { $a <=> $b } @got], 'in id order';
    ok scalar(@got) >= 600, 'every message to or from alice (' . scalar(@got) . ')';
    is $got[-1], $ids[-1], 'up to the newest';
    ok !$wa->{closed}, 'without the connection being dropped as slow';
    $_->close for $wa, $z;
};

subtest 'each row carries the last message exchanged, cut to 80 characters, null without one' => sub {
    my $row = sub {
        my ($name, $other) = @_;
        return (grep { $_->{nickname} eq $other } @{ api($name, 'GET', '/api/users')->{json}{users} })[0];
    };
    my $wc = ws('carol');
    my $long = ('a' x 79) . "\x{1F600}\x{1F600} and more";
    send_msg($wc, 'zed', $long);
    $wc->wait_for('message');
    my $cut = $row->('carol', 'zed')->{last_message_preview};
    is $cut, ('a' x 79) . "\x{1F600}", 'a long body: its first 80 characters, the cut after a whole 4-byte character';
    is length $cut, 80, 'which are 80 characters';
    is $row->('zed', 'carol')->{last_message_preview}, $cut, 'the same preview on the other side';
    my $wz = ws('zed');
    send_msg($wz, 'carol', "\x{645}\x{631}\x{62D}\x{628}\x{627} short");
    $wz->wait_for('message');
    is $row->('carol', 'zed')->{last_message_preview}, "\x{645}\x{631}\x{62D}\x{628}\x{627} short",
        'a reply from either side becomes the preview, whole when shorter';
    my $never = $row->('carol', 'Bob');
    ok exists $never->{last_message_preview} && !defined $never->{last_message_preview}, 'null for a member without messages';
    $_->close for $wc, $wz;
};

# More sends than the batch's queue holds, in one burst: on PostgreSQL a pass is under way while they arrive, and
# the sender waits for room (its connection unread meanwhile) instead of being told to send again.
subtest 'a burst larger than the queue: every send stored and answered once, in order, with no error' => sub {
    my ($z, $c) = (ws('zed'), ws('carol'));
    my @cids = map { send_msg($z, 'carol', "flood $_") } 1 .. 600;
    my (@acks, @errors);
    for (1 .. 600) {
        my $f = $z->next(10) or last;
        push @errors, $f if $f->{type} eq 'error';
        push @acks, $f->{message} if $f->{type} eq 'message';
        redo if $f->{type} ne 'message' && $f->{type} ne 'error';
    }
    is scalar @errors, 0, 'no error frame' or diag explain $errors[0];
    is_deeply [map { $_->{client_id} } @acks], \@cids, 'all 600 answered, in the order sent';
    my @ids = map { $_->{id} } @acks;
    is_deeply \@ids, [sort { $a <=> $b } @ids], 'ids grow in that order';
    my @got = map { $c->wait_for('message', 10)->{message}{id} } 1 .. 600;
    is_deeply \@got, \@ids, 'carol gets each once, in order';
    # the sender leaves in the middle of a burst: what the server read is stored and delivered, and the closed
    # connection, which a waiting send still names, is never written to after it is gone
    my @more = map { send_msg($z, 'carol', "flood and leave $_") } 1 .. 600;
    $z->close;
    my @late;
    while (my $f = $c->wait_for('message', 3)) {
        push @late, $f->{message};
    }
    is_deeply [map { $_->{body} } @late], [map { "flood and leave $_" } 1 .. @late], 'what was stored reached carol once, in order';
    my $zz = ws('zed');
    send_msg($zz, 'carol', 'still here');
    is $zz->wait_for('message')->{message}{body}, 'still here', 'and the server goes on';
    $_->close for $zz, $c;
};

is $server->stop, 0, 'forumd exits 0';
done_testing;
