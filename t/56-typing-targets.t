# Typing states are bounded per typist: a client that types to more users than the server keeps (64) pushes
# out its oldest, whose target is told it stopped; the newest still get every relay, and when the typist
# goes offline the ones kept are told it stopped, once.
use strict;
use warnings;
use lib '.';
use File::Temp qw(tempdir);
use JSON::PP;
use Test::More;
use t::Util;

my $TARGETS = 70; # more than the 64 states kept per typist
my $db_dir = tempdir(CLEANUP => 1);
my $server = spawn_forumd(settings => "auth:\n  scrypt-n: 1024", db => "$db_dir/forum.db");

my (%jar, %id);
my @targets = map { sprintf 't%02d', $_ } 1 .. $TARGETS;
for my $name ('typist', @targets) {
    $jar{$name} = tempdir(CLEANUP => 1) . '/jar';
    my $res = curl_json('curl -s', 'POST', $server->url . '/api/auth/register', cookie_jar => $jar{$name},
                        json => { nickname => $name, email => "$name\@example.org", password => 'password1', first_name => 'F',
                                  last_name => 'L', age => 33, gender => 'other' });
    die $res->{body} unless $res->{status} == 201;
    $id{$name} = $res->{json}{user}{id};
}

sub ws {
    my $name = shift;
    my $ws = ws_connect('ws://127.0.0.1:' . $server->port . '/ws', cookie => cookie_of($jar{$name}));
    die "ws for $name: $ws->{error}" if $ws->{error};
    $ws->wait_for('hello');
    return $ws;
}

sub typing { { type => 'typing', from => $id{typist}, active => $_[0] ? JSON::PP::true : JSON::PP::false } }

subtest 'typing to more users than are kept' => sub {
    my %w = map { $_ => ws($_) } qw(t01 t06 t07 t70);
    my $typist = ws('typist');
    $typist->send({ type => 'typing', to => $id{$_}, active => \1 }) for @targets;
    is_deeply $w{t70}->wait_for('typing'), typing(1), 'the last user typed to sees the typist typing';
    is_deeply $w{t07}->wait_for('typing'), typing(1), 'and so does the oldest of those kept';
    for my $gone (qw(t01 t06)) {
        is_deeply $w{$gone}->wait_for('typing'), typing(1), "$gone saw the typist typing";
        is_deeply $w{$gone}->wait_for('typing', 10), typing(0), "  and, pushed out by newer ones, is told it stopped";
    }
    is scalar $w{t07}->collect('typing', 0.5), 0, 'the oldest kept is told nothing more';

    $typist->send({ type => 'typing', to => $id{t70}, active => \0 });
    is_deeply $w{t70}->wait_for('typing'), typing(0), 'a change toward a kept one is relayed';
    $typist->send({ type => 'typing', to => $id{t70}, active => \1 });
    is_deeply $w{t70}->wait_for('typing'), typing(1), '  and back';

    $typist->close;
    is_deeply $w{t07}->wait_for('typing', 10), typing(0), 'the typist goes offline: the ones kept are told it stopped';
    is_deeply $w{t70}->wait_for('typing', 10), typing(0), '  the newest too';
    is scalar $w{$_}->collect('typing', 0.5), 0, "$_, told before, is not told again" for qw(t01 t06);
    is scalar $w{$_}->collect('typing', 0.2), 0, "$_ is told once" for qw(t07 t70);

    # typing again after going offline starts afresh: a pushed-out target is relayed to again
    $typist = ws('typist');
    $typist->send({ type => 'typing', to => $id{t01}, active => \1 });
    is_deeply $w{t01}->wait_for('typing'), typing(1), 'a typist back online is relayed to anyone';
    $_->close for $typist, values %w;
};

is $server->stop, 0, 'forumd exits 0';
done_testing;
