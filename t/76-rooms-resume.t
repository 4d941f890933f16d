# Room messages and private messages share one id sequence and one resume point: a client that
# reconnects with /ws?after=ID after a restart of forumd, a graceful restart of the binary under
# start_server(1), or a hot swap of the rooms plugin gets every private and room message it missed,
# merged in id order, and nothing twice; a connection that stays open through the swap misses nothing.
use strict;
use warnings;
use lib '.';
use File::Copy qw(copy);
use File::Temp qw(tempdir);
use Test::More;
use Time::HiRes qw(sleep time);
use t::Util;

my $settings = "auth:\n  scrypt-n: 1024\nrooms:\n  rate-limit: false";

sub register {
    my ($server, $name) = @_;
    my $jar = tempdir(CLEANUP => 1) . '/jar';
    my $res = curl_json('curl -s', 'POST', $server->url . '/api/auth/register', cookie_jar => $jar,
                        json => { nickname => $name, email => "$name\@example.org", password => 'password1', first_name => 'F',
                                  last_name => 'L', age => 33, gender => 'other' });
    die $res->{body} unless $res->{status} == 201;
    return { jar => $jar, id => $res->{json}{user}{id} };
}

sub ws {
    my ($server, $user, $query) = @_;
    my $ws = ws_connect('ws://127.0.0.1:' . $server->port . '/ws' . ($query // ''), cookie => cookie_of($user->{jar}));
    die "ws: $ws->{error}" if $ws->{error};
    $ws->{hello} = $ws->wait_for('hello', 10);
    return $ws;
}

my $n = 0;
# Sends from `ws`, alternating a private message to `to` and a lobby message; returns the stored ids.
sub send_mixed {
    my ($ws, $to, $count) = @_;
    my @ids;
    for (1 .. $count) {
        my $i = ++$n;
        if ($i % 2) {
            $ws->send({ type => 'message.send', to => $to->{id}, body => "private $i", client_id => "p$i" });
            push @ids, $ws->wait_for('message', 10)->{message}{id};
        } else {
            $ws->send({ type => 'room.send', room => 1, body => "lobby $i", client_id => "l$i" });
            push @ids, $ws->wait_for('room.message', 10)->{message}{id};
        }
    }
    return @ids;
}

# The ids of every message and room message that reaches `ws` until nothing more comes for `quiet` seconds.
sub received {
    my ($ws, $quiet) = @_;
    my @got;
    while (my $f = $ws->next($quiet // 1)) {
        push @got, $f->{message}{id} if ($f->{type} // '') =~ /^(message|room\.message)$/;
    }
    return @got;
}

subtest 'a restart: the reconnect replays private and lobby messages merged, nothing twice' => sub {
    my $dir = tempdir(CLEANUP => 1);
    my $server = spawn_forumd(settings => $settings, db => "$dir/forum.db");
    my ($ann, $ben) = (register($server, 'ann'), register($server, 'ben'));
    my $reader = ws($server, $ben, '?after=0');
    my @before = send_mixed(ws($server, $ann), $ben, 6);
    my @seen = received($reader);
    is_deeply \@seen, \@before, 'live: each once, in id order';
    is $server->stop, 0, 'forumd stops';
    $server = spawn_forumd(settings => $settings, db => "$dir/forum.db");
    my @later = send_mixed(ws($server, $ann), $ben, 6);
    $reader = ws($server, $ben, "?after=$seen[-1]");
    is $reader->{hello}{last_message_id}, $later[-1], 'the hello counts both kinds';
    is_deeply [received($reader)], \@later, 'the reconnect after the restart: what was missed, once, in order';
    is $server->stop, 0, 'forumd exits 0';
};

subtest 'a graceful restart of the binary under start_server' => sub {
    plan skip_all => 'start_server (libserver-starter-perl) is not installed' unless `which start_server` =~ /\S/;
    my $server = spawn_forumd(starter => 1, settings => $settings);
    for (1 .. 100) { last if $server->log =~ /forumd \S+ ready \(/; sleep 0.05 }
    my ($ann, $ben) = (register($server, 'ann'), register($server, 'ben'));
    my $reader = ws($server, $ben, '?after=0');
    my @before = send_mixed(ws($server, $ann), $ben, 4);
    my @seen = received($reader);
    is_deeply \@seen, \@before, 'before the restart: each once, in order';
    kill 'HUP', $server->pid;
    my $closed = $reader->wait_closed(15);
    is $closed && $closed->[0], 1001, 'the old process closes with 1001';
    my $sender;
    for (1 .. 100) { $sender = eval { ws($server, $ann) }; last if $sender && $sender->{hello}; sleep 0.1 }
    my @later = send_mixed($sender, $ben, 6);
    $reader = ws($server, $ben, "?after=$seen[-1]");
    is_deeply [received($reader)], \@later, 'the reconnect to the new process: what was missed, once, in order';
    is $server->stop, 0, 'start_server stops with its forumd';
};

subtest 'a hot swap of rooms: an open connection misses nothing, a reconnect replays the rest' => sub {
    my $build = build_dir();
    my $server = spawn_forumd(settings => $settings, watch => 1,
                              plugin_files => { rooms => "$build/plugins/rooms.so" },
                              plugins => [qw(auth posts comments chat rooms)]);
    my ($ann, $ben) = (register($server, 'ann'), register($server, 'ben'));
    my $open = ws($server, $ben, '?after=0');
    my $sender = ws($server, $ann);
    my @ids = send_mixed($sender, $ben, 6);
    my $tmp = "$server->{plugin_dir}/.rooms.so.new";
    copy("$build/t-plugins/rooms_v2.so", $tmp) or die "copy: $!";
    rename $tmp, "$server->{plugin_dir}/rooms.so" or die "rename: $!";
    my $swapped;
    for (1 .. 200) {
        my $st = curl_json('curl -s', 'GET', $server->url . '/_status')->{json};
        ($swapped) = grep { $_->{name} eq 'rooms' && $_->{generation} == 2 } @{ $st->{plugins} };
        last if $swapped;
        push @ids, send_mixed($sender, $ben, 2); # traffic through the swap
    }
    ok $swapped, 'rooms was swapped (generation 2)';
    is $swapped && $swapped->{version}, '2.0.0', 'at version 2.0.0';
    push @ids, send_mixed($sender, $ben, 6);
    is_deeply [received($open)], \@ids, 'the connection that stayed open: every message once, in order';
    my $again = ws($server, $ben, "?after=$ids[1]");
    is_deeply [received($again)], [@ids[2 .. $#ids]], 'a reconnect after the swap: the rest, once, in order';
    is $server->stop, 0, 'forumd exits 0';
};

done_testing;
