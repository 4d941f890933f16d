# Rooms (plugin rooms): the lobby every user is in, public rooms created, joined and left, their REST
# shapes and errors, room.send stored before it is delivered and idempotent by client_id, one id sequence
# with private messages in the replay, history from before joining, a non-member kept out, mentions and
# unread counts, the flood limit and its setting, and typing relayed to the other members only.
use strict;
use warnings;
use lib '.';
use File::Temp qw(tempdir);
use Test::More;
use Time::HiRes qw(sleep);
use t::Util;

# the limit is off here (many sends by the same users); its own server below has the defaults
my $server = spawn_forumd(settings => "auth:\n  scrypt-n: 1024\nrooms:\n  rate-limit: off");

my (%jar, %id);
sub register {
    my ($srv, $name) = @_;
    $jar{$name} = tempdir(CLEANUP => 1) . '/jar';
    my $res = curl_json('curl -s', 'POST', $srv->url . '/api/auth/register', cookie_jar => $jar{$name},
                        json => { nickname => $name, email => "$name\@example.org", password => 'password1', first_name => 'F',
                                  last_name => 'L', age => 33, gender => 'other' });
    die $res->{body} unless $res->{status} == 201;
    $id{$name} = $res->{json}{user}{id};
}
register($server, $_) for qw(alice bob carol dave);

sub ws_on {
    my ($srv, $name, $query) = @_;
    my $ws = ws_connect('ws://127.0.0.1:' . $srv->port . '/ws' . ($query // ''), cookie => cookie_of($jar{$name}));
    die "ws for $name: $ws->{error}" if $ws->{error};
    $ws->{hello} = $ws->wait_for('hello');
    return $ws;
}
sub ws { ws_on($server, @_) }

sub api_on {
    my ($srv, $name, $method, $path, $json) = @_;
    return curl_json('curl -s', $method, $srv->url . $path, cookie_jar => $jar{$name}, (defined $json ? (json => $json) : ()));
}
sub api { api_on($server, @_) }

my $cid = 0;
sub room_send {
    my ($ws, $room, $body, %extra) = @_;
    my $client_id = $extra{client_id} // 'r' . ++$cid;
    $ws->send({ type => 'room.send', room => $room, body => $body, client_id => $client_id, %extra });
    return $client_id;
}

sub room_of {
    my ($name, $room) = @_;
    my ($r) = grep { $_->{id} == $room } @{ api($name, 'GET', '/api/rooms?limit=100')->{json}{rooms} };
    return $r;
}

my @room_keys = sort qw(id name created_by created_at member_count last_message_id joined unread mentions);

subtest 'the lobby exists, first, and everyone is a member' => sub {
    my $res = api('alice', 'GET', '/api/rooms');
    is $res->{status}, 200, 'GET /api/rooms: 200';
    is_deeply [sort keys %{ $res->{json} }], [qw(next rooms)], 'rooms and next';
    my $lobby = $res->{json}{rooms}[0];
    is_deeply [sort keys %$lobby], \@room_keys, 'a room has its fields';
    is $lobby->{id}, 1, 'the lobby is room 1';
    is $lobby->{name}, 'Lobby', 'named Lobby';
    is $lobby->{created_by}, undef, 'created by nobody';
    like $lobby->{created_at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'created_at';
    is $lobby->{member_count}, 4, 'every account is a member';
    ok $lobby->{joined}, 'joined';
    is $lobby->{last_message_id}, undef, 'no message yet';
    is $lobby->{unread}, 0, 'nothing unread';
    is $lobby->{mentions}, 0, 'no mention';
    is $res->{json}{next}, undef, 'one page';
    register($server, 'erin');
    is room_of('erin', 1)->{member_count}, 5, 'a registration is a member at once, and counted';
    is api('erin', 'POST', '/api/rooms/1/leave')->{status}, 422, 'nobody leaves the lobby: 422';
    is api('erin', 'POST', '/api/rooms/1/leave')->{json}{error}{code}, 'validation', 'validation';
    is api('erin', 'POST', '/api/rooms/1/join')->{status}, 200, 'joining the lobby changes nothing: 200';
    is curl_json('curl -s', 'GET', $server->url . '/api/rooms')->{status}, 401, 'without a session: 401';
};

my $rust;
subtest 'create a room: 201, the creator is a member, room.created to everyone, 409 on a duplicate' => sub {
    my $wa = ws('alice');
    my $wb = ws('bob');
    my $res = api('alice', 'POST', '/api/rooms', { name => '  Rust fans  ' });
    is $res->{status}, 201, 'POST /api/rooms: 201';
    my $r = $res->{json}{room};
    is_deeply [sort keys %$r], \@room_keys, 'the room with its fields';
    is $r->{name}, 'Rust fans', 'name trimmed';
    is_deeply $r->{created_by}, { id => $id{alice}, nickname => 'alice' }, 'created_by';
    is $r->{member_count}, 1, 'one member';
    ok $r->{joined}, 'the creator joined';
    $rust = $r->{id};
    my $ca = $wa->wait_for('room.created');
    my $cb = $wb->wait_for('room.created');
    is $ca->{room}{id}, $rust, 'room.created reaches the creator';
    ok $ca->{room}{joined}, 'as joined';
    is $cb->{room}{id}, $rust, 'and everyone else';
    ok !$cb->{room}{joined}, 'as not joined';
    my $dup = api('bob', 'POST', '/api/rooms', { name => 'RUST FANS' });
    is $dup->{status}, 409, 'the same name in another case: 409';
    is $dup->{json}{error}{code}, 'conflict', 'conflict';
    is $dup->{json}{error}{field}, 'name', 'field name';
    for my $bad (['ab', 422], ["two\nlines", 422], ['x' x 41, 422], ["ctl\x{7}", 422], [17, 400]) {
        my $e = api('bob', 'POST', '/api/rooms', { name => $bad->[0] });
        is $e->{status}, $bad->[1], "name " . json_encode($bad->[0]) . ": $bad->[1]";
        is $e->{json}{error}{field}, 'name', 'field name';
    }
    is api('bob', 'POST', '/api/rooms', {})->{status}, 422, 'no name: 422';
    is scalar $wb->collect('room.created', 0.3), 0, 'refused rooms are not announced';
    $_->close for $wa, $wb;
};

subtest 'join and leave: room.member to the members, idempotent, 404' => sub {
    my $wa = ws('alice');
    my $wb = ws('bob');
    my $wc = ws('carol');
    my $res = api('bob', 'POST', "/api/rooms/$rust/join");
    is $res->{status}, 200, 'join: 200';
    ok $res->{json}{room}{joined}, 'joined';
    is $res->{json}{room}{member_count}, 2, 'two members';
    my $ma = $wa->wait_for('room.member');
    is_deeply $ma, { type => 'room.member', room => $rust, user => { id => $id{bob}, nickname => 'bob' }, joined => JSON::PP::true,
                     member_count => 2 }, 'the members are told';
    ok $wb->wait_for('room.member'), 'and the joiner';
    is scalar $wc->collect('room.member', 0.3), 0, 'not a non-member';
    $res = api('bob', 'POST', "/api/rooms/$rust/join");
    is $res->{json}{room}{member_count}, 2, 'joining twice changes nothing';
    is scalar $wa->collect('room.member', 0.3), 0, 'and announces nothing';
    $res = api('carol', 'POST', "/api/rooms/$rust/leave");
    is $res->{status}, 200, 'leaving a room one is not in: 200';
    ok !$res->{json}{room}{joined}, 'not joined';
    is $res->{json}{room}{member_count}, 2, 'nothing changed';
    is api('bob', 'POST', '/api/rooms/999999/join')->{status}, 404, 'no such room: 404';
    is api('bob', 'POST', '/api/rooms/999999/join')->{json}{error}{code}, 'not_found', 'not_found';
    is api('bob', 'POST', '/api/rooms/999999/leave')->{status}, 404, 'leave: 404';
    is api('bob', 'POST', '/api/rooms/abc/join')->{status}, 404, 'not an id: 404';
    is api('carol', 'POST', "/api/rooms/$rust/join")->{status}, 200, 'carol joins';
    $wa->wait_for('room.member');
    $res = api('carol', 'POST', "/api/rooms/$rust/leave");
    ok !$res->{json}{room}{joined}, 'and leaves';
    is $res->{json}{room}{member_count}, 2, 'back to two';
    my $left = $wa->wait_for('room.member');
    ok !$left->{joined} && $left->{user}{id} == $id{carol}, 'the members are told she left';
    ok $wc->wait_for('room.member'), 'and so is she';
    $_->close for $wa, $wb, $wc;
};

subtest 'room.send: stored, then delivered to every member, acknowledged with the client_id; a repeat is not stored twice' => sub {
    my $wa = ws('alice');
    my $wa2 = ws('alice');
    my $wb = ws('bob');
    my $wc = ws('carol');
    my $client_id = room_send($wa, $rust, "  hello rust \x{1F980}  ", from => $id{carol});
    my $ack = $wa->wait_for('room.message');
    ok $ack, 'the sender gets its message: the acknowledgement';
    my $m = $ack->{message};
    is_deeply [sort keys %$m], [sort qw(id room from body created_at mentions client_id)], 'a room_message with its fields';
    is $m->{client_id}, $client_id, 'with the client_id';
    is $m->{body}, "hello rust \x{1F980}", 'trimmed body';
    is $m->{room}, $rust, 'in the room';
    is_deeply $m->{from}, { id => $id{alice}, nickname => 'alice' }, 'from the session user, never the payload';
    is_deeply $m->{mentions}, [], 'no mentions';
    is $wa2->wait_for('room.message')->{message}{client_id}, $client_id, 'every tab of the sender gets it with its client_id';
    my $mb = $wb->wait_for('room.message')->{message};
    is $mb->{id}, $m->{id}, 'the other member gets it';
    ok !exists $mb->{client_id}, 'without the client_id';
    is scalar $wc->collect('room.message', 0.4), 0, 'a non-member gets nothing';
    # stored before delivered: what was delivered is already in the history
    my $hist = api('bob', 'GET', "/api/rooms/$rust/messages")->{json};
    is_deeply [sort keys %$hist], [qw(has_more messages)], 'history: messages and has_more';
    is $hist->{messages}[-1]{id}, $m->{id}, 'the message is stored';
    ok !exists $hist->{messages}[-1]{client_id}, 'a member sees no one else\'s client_id';
    is api('alice', 'GET', "/api/rooms/$rust/messages")->{json}{messages}[-1]{client_id}, $client_id, 'the sender sees its own';

    room_send($wa, $rust, 'a different body', client_id => $client_id);
    my $again = $wa->wait_for('room.message')->{message};
    is_deeply $again, $m, 'a repeated client_id answers the stored message, unchanged';
    is scalar $wb->collect('room.message', 0.4), 0, 'and delivers nothing to the others';
    is scalar @{ api('bob', 'GET', "/api/rooms/$rust/messages")->{json}{messages} }, 1, 'stored once';
    is room_of('bob', $rust)->{last_message_id}, $m->{id}, 'the room\'s last_message_id';
    $_->close for $wa, $wa2, $wb, $wc;
};

subtest 'a non-member: forbidden to send, type or read, and receives nothing of the room' => sub {
    my $wa = ws('alice');
    my $wc = ws('carol');
    my $client_id = room_send($wc, $rust, 'let me in');
    my $err = $wc->wait_for('error');
    is $err->{code}, 'forbidden', 'room.send: forbidden';
    is $err->{ref}, $client_id, 'ref is the client_id';
    is scalar $wa->collect('room.message', 0.3), 0, 'nothing delivered';
    is scalar @{ api('alice', 'GET', "/api/rooms/$rust/messages")->{json}{messages} }, 1, 'nothing stored';
    $wc->send({ type => 'room.typing', room => $rust, active => \1 });
    is $wc->wait_for('error')->{code}, 'forbidden', 'room.typing: forbidden';
    is scalar $wa->collect('room.typing', 0.3), 0, 'not relayed';
    room_send($wc, 999999, 'nowhere');
    is $wc->wait_for('error')->{code}, 'not_found', 'a room that does not exist: not_found';
    $wc->send({ type => 'room.send', room => 'x', body => 'b', client_id => 'bad-room' });
    is $wc->wait_for('error')->{code}, 'bad_request', 'a room that is not an id: bad_request';
    room_send($wc, 1, '');
    is $wc->wait_for('error')->{code}, 'validation', 'an empty body: validation';
    $wc->send({ type => 'room.send', room => 1, body => 'b' });
    is $wc->wait_for('error')->{code}, 'validation', 'no client_id: validation';
    my $res = api('carol', 'GET', "/api/rooms/$rust/messages");
    is $res->{status}, 403, 'history: 403';
    is $res->{json}{error}{code}, 'forbidden', 'forbidden';
    is api('carol', 'POST', "/api/rooms/$rust/read", { up_to => 1 })->{status}, 403, 'read: 403';
    is api('carol', 'GET', '/api/rooms/999999/messages')->{status}, 404, 'history of no room: 404';
    is room_of('carol', $rust)->{unread}, 0, 'a room not joined has no unread';
    # alice's message while carol is connected and not a member
    room_send($wa, $rust, 'members only');
    $wa->wait_for('room.message');
    is scalar $wc->collect('room.message', 0.4), 0, 'a non-member receives nothing of the room';
    $_->close for $wa, $wc;
};

subtest 'the lobby: a message reaches everyone online' => sub {
    my %w = map { $_ => ws($_) } qw(alice bob carol dave);
    my $client_id = room_send($w{dave}, 1, 'hello everyone');
    my $ack = $w{dave}->wait_for('room.message')->{message};
    is $ack->{client_id}, $client_id, 'the sender\'s copy has its client_id';
    for my $name (qw(alice bob carol)) {
        my $m = $w{$name}->wait_for('room.message');
        is $m->{message}{id}, $ack->{id}, "$name gets it";
        ok !exists $m->{message}{client_id}, 'without the client_id';
    }
    is scalar $w{dave}->collect('room.message', 0.3), 0, 'the sender gets it once';
    is api('erin', 'GET', '/api/rooms/1/messages')->{json}{messages}[-1]{id}, $ack->{id}, 'every user reads the lobby';
    $_->close for values %w;
};

subtest 'a member who joins sees the history from before' => sub {
    my $res = api('dave', 'POST', "/api/rooms/$rust/join");
    is $res->{json}{room}{unread}, 0, 'history from before is not unread';
    my $hist = api('dave', 'GET', "/api/rooms/$rust/messages")->{json}{messages};
    is_deeply [map { $_->{body} } @$hist], ["hello rust \x{1F980}", 'members only'], 'the earlier messages';
    my $page = api('dave', 'GET', "/api/rooms/$rust/messages?limit=1")->{json};
    is_deeply [map { $_->{body} } @{ $page->{messages} }], ['members only'], 'limit=1: the newest';
    ok $page->{has_more}, 'has_more';
    my $older = api('dave', 'GET', "/api/rooms/$rust/messages?limit=1&before=$page->{messages}[0]{id}")->{json};
    is_deeply [map { $_->{body} } @{ $older->{messages} }], ["hello rust \x{1F980}"], 'before: the one older';
    ok !$older->{has_more}, 'no more';
    is api('dave', 'GET', "/api/rooms/$rust/messages?limit=0")->{status}, 400, 'limit=0: 400';
    is api('dave', 'GET', "/api/rooms/$rust/messages?limit=51")->{status}, 400, 'limit=51: 400';
};

subtest 'mentions: @nickname of a member, counted until read' => sub {
    my $wa = ws('alice');
    my $wb = ws('bob');
    room_send($wa, $rust, 'ping @BOB and @carol and @alice, mail bob@example.org, @dave.');
    my $m = $wa->wait_for('room.message')->{message};
    is_deeply [sort { $a <=> $b } @{ $m->{mentions} }], [sort { $a <=> $b } $id{bob}, $id{dave}],
        'bob in any case and dave before a full stop are mentioned; carol (not a member), the sender and an address are not';
    is_deeply $wb->wait_for('room.message')->{message}{mentions}, $m->{mentions}, 'delivered with the mentions';
    my $r = room_of('bob', $rust);
    is $r->{mentions}, 1, 'bob: one mention';
    is room_of('carol', $rust)->{mentions}, 0, 'carol: none';
    is room_of('alice', $rust)->{mentions}, 0, 'alice: none';
    room_send($wa, 1, 'lobby ping @carol');
    my $lm = $wa->wait_for('room.message')->{message};
    is_deeply $lm->{mentions}, [$id{carol}], 'in the lobby anyone is a member';
    is room_of('carol', 1)->{mentions}, 1, 'carol: one mention in the lobby';
    is api('carol', 'POST', '/api/rooms/1/read', { up_to => $lm->{id} })->{status}, 204, 'read: 204';
    is room_of('carol', 1)->{mentions}, 0, 'read: no mention left';
    is room_of('carol', 1)->{unread}, 0, 'nor unread';
    is api('bob', 'POST', "/api/rooms/$rust/read", { up_to => $m->{id} - 1 })->{status}, 204, 'bob reads up to before it';
    is room_of('bob', $rust)->{mentions}, 1, 'the mention is still unread';
    $wb->send({ type => 'room.read', room => $rust, up_to => $m->{id} });
    $wb->collect('nothing', 0.3); # runs the client's loop: the frame goes out
    is room_of('bob', $rust)->{mentions}, 0, 'room.read clears it';
    is room_of('bob', $rust)->{unread}, 0, 'and the unread';
    $_->close for $wa, $wb;
};

subtest 'unread counts are exact; a read mark moves forward only and never past the last message' => sub {
    my $wa = ws('alice');
    my @ids = map { room_send($wa, $rust, "count $_"); $wa->wait_for('room.message')->{message}{id} } 1 .. 3;
    # a message elsewhere takes an id between two of this room's
    room_send($wa, 1, 'elsewhere');
    my $between = $wa->wait_for('room.message')->{message}{id};
    push @ids, map { room_send($wa, $rust, "count $_"); $wa->wait_for('room.message')->{message}{id} } 4 .. 5;
    is room_of('alice', $rust)->{unread}, 0, 'one\'s own messages are never unread';
    is room_of('bob', $rust)->{unread}, 5, 'bob: 5 unread';
    api('bob', 'POST', "/api/rooms/$rust/read", { up_to => $ids[1] });
    is room_of('bob', $rust)->{unread}, 3, 'read up to the second: 3';
    api('bob', 'POST', "/api/rooms/$rust/read", { up_to => $ids[0] });
    is room_of('bob', $rust)->{unread}, 3, 'a mark never moves back';
    api('bob', 'POST', "/api/rooms/$rust/read", { up_to => $between });
    is room_of('bob', $rust)->{unread}, 2, 'a mark between messages: the later ones';
    api('bob', 'POST', "/api/rooms/$rust/read", { up_to => 1_000_000_000 });
    is room_of('bob', $rust)->{unread}, 0, 'read far ahead: 0';
    room_send($wa, $rust, 'after the far mark');
    $wa->wait_for('room.message');
    is room_of('bob', $rust)->{unread}, 1, 'the mark stopped at the last message: a new one is unread';
    is room_of('erin', 1)->{unread}, 3, 'erin never read the lobby: its 3 messages since she registered are unread';
    register($server, 'fred');
    is room_of('fred', 1)->{unread}, 0, 'what the lobby said before someone registered is history, not unread';
    is api('fred', 'POST', '/api/rooms/1/read', { up_to => 0 })->{status}, 204, 'a read mark at 0';
    is room_of('fred', 1)->{unread}, 0, 'does not make it unread';
    room_send($wa, 1, 'welcome fred');
    $wa->wait_for('room.message');
    is room_of('fred', 1)->{unread}, 1, 'what comes after is';
    is api('bob', 'POST', "/api/rooms/$rust/read", {})->{status}, 422, 'read without up_to: 422';
    is api('bob', 'POST', "/api/rooms/$rust/read", { up_to => 'x' })->{status}, 400, 'up_to not a number: 400';
    $wa->close;
};

subtest 'rooms list: lobby, joined by latest message, then the others; cursor pages' => sub {
    my @made;
    for my $n (1 .. 3) {
        my $res = api('carol', 'POST', '/api/rooms', { name => "carol room $n" });
        push @made, $res->{json}{room}{id};
    }
    # bob joins room 1 of carol's; alice's rust room has the latest message of bob's rooms
    api('bob', 'POST', "/api/rooms/$made[0]/join");
    my $wc = ws('carol');
    room_send($wc, $made[0], 'newest of all');
    $wc->wait_for('room.message');
    my @all = @{ api('bob', 'GET', '/api/rooms')->{json}{rooms} };
    is_deeply [map { $_->{id} } @all], [1, $made[0], $rust, $made[2], $made[1]],
        'the lobby, joined rooms by latest message, then the others (no messages: newest first)';
    my (@paged, $next);
    my $path = '/api/rooms?limit=2';
    for (1 .. 10) {
        my $page = api('bob', 'GET', $path)->{json};
        push @paged, map { $_->{id} } @{ $page->{rooms} };
        $next = $page->{next};
        last unless defined $next;
        $path = "/api/rooms?limit=2&before=$next";
    }
    is_deeply \@paged, [map { $_->{id} } @all], 'pages of 2 follow the same order, nothing twice, nothing skipped';
    is api('bob', 'GET', '/api/rooms?before=garbage')->{status}, 400, 'a cursor this server did not give: 400';
    is api('bob', 'GET', '/api/rooms?before=garbage')->{json}{error}{field}, 'before', 'field before';
    is api('bob', 'GET', '/api/rooms?limit=101')->{status}, 400, 'limit=101: 400';
    $wc->close;
};

subtest 'typing: relayed to the other members only, stopped by a send and by going offline' => sub {
    my $wa = ws('alice');
    my $wb = ws('bob');
    my $wc = ws('carol');
    $wa->send({ type => 'room.typing', room => $rust, active => \1 });
    is_deeply $wb->wait_for('room.typing'),
        { type => 'room.typing', room => $rust, from => { id => $id{alice}, nickname => 'alice' }, active => JSON::PP::true },
        'a member sees alice typing';
    is scalar $wa->collect('room.typing', 0.3), 0, 'not the typist';
    is scalar $wc->collect('room.typing', 0.1), 0, 'not a non-member';
    room_send($wa, $rust, 'done typing');
    my $stop = $wb->wait_for('room.typing');
    ok $stop && !$stop->{active}, 'a send stops the indicator';
    $wb->send({ type => 'room.typing', room => 1, active => \1 });
    my $lobby = $wc->wait_for('room.typing');
    is $lobby->{room}, 1, 'in the lobby everyone else sees it';
    ok $lobby->{active}, 'active';
    is scalar $wb->collect('room.typing', 0.3), 0, 'not the typist';
    $wb->close;
    my $gone = $wc->wait_for('room.typing');
    ok $gone && !$gone->{active} && $gone->{from}{id} == $id{bob}, 'a typist whose last connection closes stops typing';
    $wa->send({ type => 'room.typing', room => $rust, active => 'yes' });
    is $wa->wait_for('error')->{code}, 'bad_request', 'active must be a boolean';
    $_->close for $wa, $wc;
};

subtest 'typing: thinned when repeated, and bounded per typist' => sub {
    my $wa = ws('alice');
    my $wd = ws('dave');
    $wa->send({ type => 'room.typing', room => 1, active => \1 }) for 1 .. 5;
    my @got = $wd->collect('room.typing', 0.5);
    is scalar @got, 1, 'five active:true at once are relayed once';
    $wa->send({ type => 'room.typing', room => 1, active => \0 });
    ok !$wd->wait_for('room.typing')->{active}, 'a change is relayed at once';
    # alice types in 17 rooms that dave is in: the state of the first is dropped, and dave is told she stopped there
    my @rooms;
    for my $n (1 .. 17) {
        my $r = api('alice', 'POST', '/api/rooms', { name => "typing room $n" })->{json}{room}{id};
        api('dave', 'POST', "/api/rooms/$r/join");
        push @rooms, $r;
    }
    $wd->collect('room.member', 0.2);
    $wa->send({ type => 'room.typing', room => $_, active => \1 }) for @rooms;
    my @relayed = $wd->collect('room.typing', 1);
    my @stopped = grep { !$_->{active} } @relayed;
    is scalar(grep { $_->{active} } @relayed), 17, 'each room is told once that she types';
    is_deeply [map { $_->{room} } @stopped], [$rooms[0]], 'the 17th pushes out the first room, whose members are told she stopped';
    $wa->send({ type => 'room.read', room => 1, up_to => 'x' });
    is $wa->wait_for('error')->{code}, 'bad_request', 'room.read with a bad up_to: bad_request';
    $_->close for $wa, $wd;
};

subtest 'one id sequence: the replay gives private and room messages in order, once each' => sub {
    my $wa = ws('alice');
    my $start = $wa->{hello}{last_message_id};
    my @sent;
    for my $i (1 .. 3) {
        $wa->send({ type => 'message.send', to => $id{bob}, body => "private $i", client_id => "seq-p$i" });
        push @sent, $wa->wait_for('message')->{message}{id};
        room_send($wa, $rust, "room $i");
        push @sent, $wa->wait_for('room.message')->{message}{id};
    }
    is_deeply [sort { $a <=> $b } @sent], \@sent, 'ids grow across both kinds';
    my %seen;
    ok !(grep { $seen{$_}++ } @sent), 'no id shared by two messages';
    my $wb = ws('bob', "?after=$start");
    is $wb->{hello}{last_message_id}, $sent[-1], 'hello: the newest private or room message bob can see';
    my @replayed;
    while (my $f = $wb->next(3)) {
        next unless $f->{type} eq 'message' || $f->{type} eq 'room.message';
        push @replayed, $f->{message}{id};
        last if $f->{message}{id} == $sent[-1];
    }
    is_deeply \@replayed, \@sent, 'replayed in id order, both kinds, nothing twice';
    my $wc = ws('carol', "?after=$start");
    is scalar $wc->collect('room.message', 0.5), 0, 'a non-member gets none of the room\'s messages replayed';
    $_->close for $wa, $wb, $wc;
};

# Another process's sqlite3 shell holding the write lock until release().
sub hold_lock {
    open my $fh, '|-', "sqlite3 '$server->{db}' >/dev/null 2>&1" or die "sqlite3: $!";
    $fh->autoflush(1);
    print $fh ".timeout 10000\nBEGIN IMMEDIATE;\n";
    for (1 .. 200) {
        last if `sqlite3 '$server->{db}' 'BEGIN IMMEDIATE; ROLLBACK;' 2>&1` =~ /locked|busy/i;
        sleep 0.05;
    }
    return $fh;
}

subtest 'the database locked by another process: sends wait, then arrive once and in order; REST answers 503' => sub {
    plan skip_all => 'SQLite only: another process\'s sqlite3 holds SQLite\'s database-wide write lock'
        unless $server->backend eq 'sqlite';
    my $wa = ws('alice');
    my $wb = ws('bob');
    my $lock = hold_lock();
    my @cids = map { room_send($wa, $rust, "under the lock $_") } 1 .. 5;
    $wa->send({ type => 'ping' });
    ok $wa->wait_for('pong', 10), 'the connection is served meanwhile';
    is scalar $wb->collect('room.message', 0.5), 0, 'nothing is delivered while it cannot be stored';
    is scalar $wa->collect('room.message', 0), 0, 'nor acknowledged';
    my $res = api('bob', 'POST', '/api/rooms', { name => 'under a lock' });
    is $res->{status}, 503, 'creating a room: 503';
    is $res->{json}{error}{code}, 'unavailable', 'unavailable';
    ok $res->{headers}{'retry-after'}, 'with Retry-After';
    print $lock "ROLLBACK;\n";
    close $lock;
    my @got = map { $wb->wait_for('room.message', 10) } 1 .. 5;
    is_deeply [map { $_ && $_->{message}{body} } @got], [map { "under the lock $_" } 1 .. 5], 'then every message arrives, in order';
    is_deeply [map { $_->{message}{client_id} } map { $wa->wait_for('room.message', 5) // {} } 1 .. 5], \@cids, 'and is acknowledged';
    is scalar $wb->collect('room.message', 0.3), 0, 'once';
    $_->close for $wa, $wb;
};

subtest 'the flood limit: a burst of 10, then rate_limited with retry_after_ms and nothing stored' => sub {
    my $limited = spawn_forumd(settings => "auth:\n  scrypt-n: 1024");
    register($limited, 'flood');
    my $w = ws_on($limited, 'flood');
    # sent together: read in one turn, long before a token comes back
    my @cids = map { room_send($w, 1, "burst $_") } 1 .. 11;
    my @acks = map { $w->wait_for('room.message') } 1 .. 10;
    is scalar(grep { defined } @acks), 10, 'ten are stored and acknowledged';
    my $err = $w->wait_for('error');
    is $err->{code}, 'rate_limited', 'the eleventh: rate_limited';
    is $err->{ref}, $cids[10], 'ref is its client_id';
    ok $err->{retry_after_ms} > 0 && $err->{retry_after_ms} <= 1000, "retry_after_ms ($err->{retry_after_ms})";
    is scalar $w->collect('room.message', 0.3), 0, 'not delivered';
    my $hist = api_on($limited, 'flood', 'GET', '/api/rooms/1/messages?limit=50')->{json}{messages};
    is scalar @$hist, 10, 'not stored';
    room_send($w, 1, 'again', client_id => $cids[0]);
    my $again = $w->wait_for('room.message');
    is $again && $again->{message}{id}, $acks[0]{message}{id}, 'a repeat of a stored client_id is not charged: answered';
    $w->close;
    $limited->stop;

    my $w2 = ws('dave');
    my @many = map { room_send($w2, 1, "unlimited $_") } 1 .. 15;
    my @got = map { $w2->wait_for('room.message') } 1 .. 15;
    is scalar(grep { defined } @got), 15, 'with rate-limit off, 15 quick sends are all stored';
    is scalar $w2->collect('error', 0.2), 0, 'and none refused';
    $w2->close;
};

subtest 'the flood limit refills' => sub {
    my $srv = spawn_forumd(settings => "auth:\n  scrypt-n: 1024\nrooms:\n  rate-burst: 1\n  rate-refill-ms: 300");
    register($srv, 'refill');
    my $w = ws_on($srv, 'refill');
    room_send($w, 1, 'first');
    ok $w->wait_for('room.message'), 'a burst of 1: the first goes';
    room_send($w, 1, 'second');
    my $err = $w->wait_for('error');
    is $err && $err->{code}, 'rate_limited', 'the second at once is refused';
    ok $err->{retry_after_ms} > 0 && $err->{retry_after_ms} <= 300, 'retry_after_ms within the refill';
    $w->collect('nothing', ($err->{retry_after_ms} + 50) / 1000);
    room_send($w, 1, 'third');
    ok $w->wait_for('room.message'), 'after retry_after_ms a token is back';
    $w->close;
    $srv->stop;
};

subtest 'the table of buckets is bounded: a full one forgets its least recently used sender' => sub {
    my $srv = spawn_forumd(settings => "auth:\n  scrypt-n: 1024\nrooms:\n  rate-burst: 1\n  rate-refill-ms: 3600000\n"
                                     . "  limiter-entries: 16");
    register($srv, "lru$_") for 0 .. 16;
    my $w = ws_on($srv, 'lru0');
    room_send($w, 1, 'first');
    ok $w->wait_for('room.message'), 'the first goes';
    room_send($w, 1, 'second');
    is $w->wait_for('error')->{code}, 'rate_limited', 'the second is refused (no refill within the test)';
    for my $i (1 .. 15) {
        my $o = ws_on($srv, "lru$i");
        room_send($o, 1, "from $i");
        $o->wait_for('room.message');
        $o->close;
    }
    # sixteen senders fill the table; lru0 is the least recently used; a seventeenth takes its place
    my $o = ws_on($srv, 'lru16');
    room_send($o, 1, 'the seventeenth sender');
    $o->wait_for('room.message');
    $o->close;
    $w->{queue} = [];
    room_send($w, 1, 'third');
    my $f = $w->wait_for('room.message', 5);
    ok $f && $f->{message}{body} eq 'third', 'lru0, forgotten, starts again with a full bucket';
    room_send($w, 1, 'fourth');
    is $w->wait_for('error')->{code}, 'rate_limited', 'which it spends as before';
    $w->close;
    $srv->stop;
};

subtest 'a user who registered while rooms was not loaded is in the lobby too' => sub {
    my $db = tempdir(CLEANUP => 1) . '/forum.db';
    my $before = spawn_forumd(db => $db, plugins => [qw(auth posts comments chat)], settings => "auth:\n  scrypt-n: 1024");
    register($before, 'early');
    is $before->stop, 0, 'a server without rooms';
    my $after = spawn_forumd(db => $db, settings => "auth:\n  scrypt-n: 1024");
    my $lobby = api_on($after, 'early', 'GET', '/api/rooms')->{json}{rooms}[0];
    ok $lobby->{joined}, 'then, with rooms loaded, the lobby counts them as a member';
    is $lobby->{member_count}, 1, 'and in its member count';
    my $w = ws_on($after, 'early');
    my $client_id = room_send($w, 1, 'I was here first');
    is $w->wait_for('room.message')->{message}{client_id}, $client_id, 'and they can send there';
    $w->close;
    $after->stop;
};

subtest 'settings are checked' => sub {
    my $bad = spawn_forumd(settings => "rooms:\n  rate-burst: 0", expect_fail => 1);
    isnt $bad->{exit}, 0, 'rate-burst 0 is refused';
    like $bad->log, qr/rate-burst/, 'naming the key';
};

is $server->stop, 0, 'the server stops cleanly';
done_testing;
