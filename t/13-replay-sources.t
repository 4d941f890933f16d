# The core's replay over several plugins' messages (plugin API version 4): private messages (chat) and
# the notes of a test plugin (ticker, whose source reads only three ids per call) share one id sequence,
# and /ws?after=ID replays both, merged in id order, nothing twice and nothing missed; the hello's
# last_message_id counts both; a source that cannot be read closes the connection with 1013 and the
# client, reconnecting, misses nothing.
use strict;
use warnings;
use lib '.';
use File::Temp qw(tempdir);
use Test::More;
use t::Util;

my $server = spawn_forumd(plugins => [qw(auth chat ticker)], settings => "auth:\n  scrypt-n: 1024");

my (%jar, %id);
for my $name (qw(alice bob)) {
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

sub note_for {
    my ($name) = @_;
    my $res = curl_json('curl -s', 'POST', $server->url . '/api/ticker', cookie_jar => $jar{alice}, json => { to => $id{$name} });
    die $res->{body} unless $res->{status} == 201;
    return $res->{json}{id};
}

# Everything replayed to `ws` until `want` frames of either kind came: [kind, id] in arrival order.
sub replayed {
    my ($ws, $want) = @_;
    my @got;
    while (@got < $want) {
        my $f = $ws->next(10) // last;
        push @got, [$f->{type}, $f->{type} eq 'message' ? $f->{message}{id} : $f->{id}] if $f->{type} =~ /^(message|ticker)$/;
    }
    return @got;
}

my $alice = ws('alice');
my (@sent, $n) = ();
# interleaved: runs of notes longer than the ticker's window, between private messages
for my $round (1 .. 6) {
    push @sent, ['ticker', note_for('bob')] for 1 .. $round % 3 + 1;
    $alice->send({ type => 'message.send', to => $id{bob}, body => "m$round", client_id => "c$round" });
    push @sent, ['message', $alice->wait_for('message', 10)->{message}{id}];
}
push @sent, ['ticker', note_for('bob')] for 1 .. 7;
$alice->close;
my @ids = map { $_->[1] } @sent;

subtest 'one sequence numbers the messages of both plugins' => sub {
    is scalar(keys %{ { map { $_ => 1 } @ids } }), scalar @ids, 'no id given twice';
    is_deeply [sort { $a <=> $b } @ids], \@ids, 'ids grow in the order the messages were stored, whichever plugin stored them';
};

subtest '/ws?after=0 replays both, merged in id order' => sub {
    my $bob = ws('bob', '?after=0');
    is $bob->{hello}{last_message_id}, $ids[-1], "the hello's last_message_id is the newest of both";
    my @got = replayed($bob, scalar @sent);
    is_deeply \@got, \@sent, 'every message and note once, in id order';
    is_deeply [$bob->collect('ticker', 0.5), $bob->collect('message', 0)], [], 'nothing more';
    my $live = note_for('bob');
    is $bob->wait_for('ticker', 5)->{id}, $live, 'caught up: a live note arrives';
    is_deeply [$bob->collect('ticker', 0.5)], [], 'once';
    push @sent, ['ticker', $live];
    $bob->close;
};

subtest '/ws?after=ID replays only what is newer, from the middle of a run' => sub {
    for my $at (3, 7, $#sent - 1) {
        my $bob = ws('bob', "?after=$sent[$at][1]");
        my @want = @sent[$at + 1 .. $#sent];
        is_deeply [replayed($bob, scalar @want)], \@want, "after the message at position $at: the rest, in order";
        $bob->close;
    }
};

subtest 'a source that cannot be read: closed with 1013, and the reconnect misses nothing' => sub {
    my $res = curl_json('curl -s', 'POST', $server->url . '/api/ticker/fail', cookie_jar => $jar{alice}, json => {});
    is $res->{status}, 204, 'the next listing fails';
    my $bob = ws('bob', '?after=0');
    my $closed = $bob->wait_closed(10);
    is $closed->[0], 1013, 'closed with 1013 (try again later)';
    like $server->log, qr/replay for user $id{bob}: a source could not be read/, 'and logged';
    $bob = ws('bob', '?after=0');
    is_deeply [replayed($bob, scalar @sent)], \@sent, 'the reconnect replays everything';
    $bob->close;
};

is $server->stop, 0, 'forumd exits 0';
done_testing;
