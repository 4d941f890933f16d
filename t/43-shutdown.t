# SIGTERM and SIGINT: stop accepting, finish requests in flight, close WebSockets with 1001, exit 0.
use strict;
use warnings;
use lib '.';
use File::Temp;
use IO::Socket::INET;
use POSIX qw(:sys_wait_h);
use Test::More;
use Time::HiRes qw(sleep time);
use t::Util;

for my $signal (qw(TERM INT)) {
    subtest "SIG$signal" => sub {
        my $server = spawn_forumd(plugins => [qw(auth posts comments chat probe)]);
        my $jar = probe_login($server, 1);
        my $ws = ws_connect('ws://127.0.0.1:' . $server->port . '/ws', cookie => cookie_of($jar));
        $ws->wait_for('hello');

        # a request that needs 1.5 s on the thread pool, in flight when the signal arrives
        my $out = File::Temp->new;
        my $curl = fork // die;
        if ($curl == 0) {
            exec 'curl', '-s', '-o', $out->filename, '-w', '%{http_code}', '-b', $jar, '-H', 'Content-Type: application/json',
                '--data', '{"ms":1500}', $server->url . '/api/probe/sleep';
        }
        sleep 0.5;
        # a message queued just before the signal must still arrive before the close
        curl_json('curl -s', 'POST', $server->url . '/api/probe/publish', json => { text => 'last words' }, cookie_jar => $jar);
        my $t0 = time;
        kill $signal, $server->pid;
        my $note = $ws->wait_for('probe.note', 5);
        is $note && $note->{text}, 'last words', 'a message queued before the signal is delivered';
        my $closed = $ws->wait_closed(5);
        is $closed && $closed->[0], 1001, 'the WebSocket is closed with 1001';
        sleep 0.2;
        ok !IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $server->port, Timeout => 1),
            'new connections are refused';
        waitpid $curl, 0;
        is $? >> 8, 0, 'the request in flight completed';
        is t::Util::slurp($out->filename), '{"slept_ms":1500,"version":"1.0.0"}', 'with its full answer';
        is $server->stop, 0, 'forumd exits 0';
        ok time - $t0 < 8, 'without waiting for the shutdown timeout';
    };
}

done_testing;
