# Hot swap: a new plugin file renamed into place (plugins.watch) or found at SIGHUP becomes the next
# generation; requests in flight finish on the old one; WebSockets never notice; bad files are refused.
use strict;
use warnings;
use lib '.';
use File::Copy qw(copy);
use File::Temp;
use Test::More;
use Time::HiRes qw(sleep time);
use t::Util;

my $tplugins = build_dir() . '/t-plugins';

sub place {    # renames a copy of $src into place as NAME.so, as a deploy would
    my ($server, $src, $name) = @_;
    my $tmp = "$server->{plugin_dir}/.$name.so.new";
    copy($src, $tmp) or die "copy: $!";
    rename $tmp, "$server->{plugin_dir}/$name.so" or die "rename: $!";
}

sub status_of {
    my ($server, $name) = @_;
    my $st = curl_json('curl -s', 'GET', $server->url . '/_status')->{json};
    return (grep { $_->{name} eq $name } @{ $st->{plugins} })[0];
}

sub wait_generation {
    my ($server, $name, $gen) = @_;
    my $deadline = time + 10;
    while (time < $deadline) {
        my $p = status_of($server, $name);
        return $p if $p && $p->{generation} >= $gen;
        sleep 0.05;
    }
    return status_of($server, $name);
}

subtest 'a new file renamed into place is swapped in while requests and WebSockets carry on' => sub {
    my $server = spawn_forumd(plugins => [qw(auth probe)], plugin_files => { probe => "$tplugins/probe.so" },
                           settings => "auth:\n  scrypt-n: 1024", watch => 1);
    my $jar = probe_login($server, 1);
    my $ws = ws_connect('ws://127.0.0.1:' . $server->port . '/ws', cookie => cookie_of($jar));
    $ws->wait_for('hello');
    is status_of($server, 'probe')->{generation}, 1, 'generation 1 at start';

    my $out = File::Temp->new;
    my $pid = fork // die;
    if ($pid == 0) {
        exec 'curl', '-s', '-o', $out->filename, '-b', $jar, '-H', 'Content-Type: application/json', '--data', '{"ms":1500}',
            $server->url . '/api/probe/sleep';
    }
    sleep 0.4;
    place($server, "$tplugins/probe_v2.so", 'probe');
    my $p = wait_generation($server, 'probe', 2);
    is_deeply [$p->{generation}, $p->{version}], [2, '2.0.0'], '/_status shows generation 2 at version 2.0.0';
    my $who = curl_json('curl -s', 'GET', $server->url . '/api/probe/whoami');
    is $who->{json}{version}, '2.0.0', 'new requests reach the new generation';
    waitpid $pid, 0;
    is slurp($out->filename), '{"slept_ms":1500,"version":"1.0.0"}', 'the request in flight finished on the old generation';
    for (1 .. 100) { last if $server->log =~ /plugin probe 1\.0\.0: generation 1 unloaded/; sleep 0.05 }
    like $server->log, qr/plugin probe 1\.0\.0: generation 1 unloaded/, 'which was unloaded once nothing pinned it';

    $ws->send({ type => 'probe.echo', data => 'still here' });
    is $ws->wait_for('probe.echo')->{data}, 'still here', 'the WebSocket never noticed; its frames reach the new generation';
    ok !$ws->{closed}, 'not closed';

    place($server, "$tplugins/probe_v2.so", 'probe');
    $p = wait_generation($server, 'probe', 3);
    is $p->{generation}, 3, 'the same bytes renamed into place again are a new generation';

    for my $bad (['a wrong ABI', "$tplugins/wrong_abi.so"], ['no descriptor', "$tplugins/no_descriptor.so"],
                 ['another plugin\'s descriptor', "$tplugins/init_fails.so"]) {
        place($server, $bad->[1], 'probe');
        sleep 0.6;
        is status_of($server, 'probe')->{generation}, 3, "$bad->[0]: refused, generation 3 keeps serving";
        is curl_json('curl -s', 'GET', $server->url . '/api/probe/whoami')->{status}, 200, '  and answering';
    }
    my $garbage = File::Temp->new;
    print $garbage "not an ELF file\n";
    close $garbage;
    place($server, $garbage->filename, 'probe');
    sleep 0.6;
    is status_of($server, 'probe')->{generation}, 3, 'a file that is not a shared object: refused';
    like $server->log, qr/plugin probe: refused .*probe\.so: its plugin ABI is 2, this forumd speaks 3/, 'each refusal is logged';
    $ws->send({ type => 'ping' });
    ok $ws->wait_for('pong'), 'the WebSocket is still open';
    $ws->close;
    is $server->stop, 0, 'forumd exits 0';
};

subtest 'a login waiting on scrypt during a swap of auth completes on the old generation' => sub {
    my $build = build_dir();
    my $server = spawn_forumd(plugins => [qw(auth)], plugin_files => { auth => "$build/plugins/auth.so" }, watch => 1,
                              settings => "auth:\n  scrypt-n: 262144\n  hash-workers: 1");
    my $reg = curl_json('curl -s', 'POST', $server->url . '/api/auth/register',
                        json => { nickname => 'slowpoke', email => 'slow@example.org', password => 'password1', first_name => 'S',
                                  last_name => 'P', age => 50, gender => 'other' });
    is $reg->{status}, 201, 'registered (with an expensive hash)';
    my $out = File::Temp->new;
    my $pid = fork // die;
    if ($pid == 0) {
        exec 'curl', '-s', '-o', $out->filename, '-H', 'Content-Type: application/json',
            '--data', '{"login":"slowpoke","password":"password1"}', $server->url . '/api/auth/login';
    }
    sleep 0.1;
    place($server, "$build/t-plugins/auth_v2.so", 'auth');
    my $p = wait_generation($server, 'auth', 2);
    is_deeply [$p->{generation}, $p->{version}], [2, '2.0.0'], 'auth was swapped while the login waited';
    waitpid $pid, 0;
    my $res = json_decode(slurp($out->filename));
    is $res->{user}{nickname}, 'slowpoke', 'the login completed with its answer';
    # the answer goes out before the job's completion returns and drops the last pin
    for (1 .. 100) { last if $server->log =~ /plugin auth 1\.0\.0: generation 1 unloaded/; sleep 0.05 }
    like $server->log, qr/plugin auth 1\.0\.0: generation 1 unloaded/, 'and the old generation was unloaded after it';
    is $server->stop, 0, 'forumd exits 0';
};

subtest 'SIGHUP swaps what changed and nothing else' => sub {
    my $server = spawn_forumd(plugins => [qw(probe)], plugin_files => { probe => "$tplugins/probe.so" });
    kill 'HUP', $server->pid;
    sleep 0.5;
    is status_of($server, 'probe')->{generation}, 1, 'an unchanged file is not reloaded';
    place($server, "$tplugins/probe_v2.so", 'probe');
    sleep 0.5;
    is status_of($server, 'probe')->{generation}, 1, 'without plugins.watch a new file waits';
    kill 'HUP', $server->pid;
    my $p = wait_generation($server, 'probe', 2);
    is_deeply [$p->{generation}, $p->{version}], [2, '2.0.0'], 'SIGHUP swaps it in';
    is $server->stop, 0, 'forumd exits 0';
};

done_testing;
