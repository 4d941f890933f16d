# Pins are counted: a timer or a job that a plugin's init queues pins its generation like any
# other, so neither a kept nor a refused generation is unloaded while such a callback is pending.
use strict;
use warnings;
use lib '.';
use File::Copy qw(copy);
use POSIX qw(:sys_wait_h);
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

sub alive {    # reaps forumd if it died, so that the guard reports how
    my $server = shift;
    return 0 unless $server->{pid};
    return 1 if waitpid($server->{pid}, WNOHANG) == 0;
    $server->{exit} = $? & 127 ? 128 + ($? & 127) : $? >> 8;
    delete $server->{pid};
    $server->_check_sanitizers;
    return 0;
}

sub wait_log {
    my ($server, $re) = @_;
    my $deadline = time + 10;
    while (time < $deadline) {
        return 1 if $server->log =~ $re;
        return 0 unless alive($server);
        sleep 0.05;
    }
    return 0;
}

sub whoami { curl_json('curl -s', 'GET', $_[0]->url . '/api/probe/whoami') }

subtest 'a timer and a job queued in init do not unload the generation they pin when they finish' => sub {
    my $server = spawn_forumd(plugins => [qw(probe)], plugin_files => { probe => "$tplugins/probe_init_defers.so" });
    ok wait_log($server, qr/probe 1\.0\.0: the job queued in init finished/), 'the job queued in init finished';
    ok wait_log($server, qr/probe 1\.0\.0: the timer deferred in init fired/), 'the timer fired';
    ok wait_log($server, qr/probe 1\.0\.0: deferring again from the timer: accepted/), 'and the generation it pins may queue more';
    sleep 0.2;
    unlike $server->log, qr/generation 1 unloaded/, 'and generation 1, still current, was not unloaded';
    my $who = whoami($server);
    is_deeply [$who->{status}, $who->{json}{version}], [200, '1.0.0'], 'it keeps answering';
    ok alive($server), 'forumd is alive';
    is $server->stop, 0, 'forumd exits 0';
    like $server->log, qr/plugin probe 1\.0\.0: generation 1 unloaded/, 'generation 1 is unloaded once, at the stop';
};

subtest 'a generation refused after its init queued a timer and a job stays loaded until both have run' => sub {
    my $server = spawn_forumd(plugins => [qw(probe)], plugin_files => { probe => "$tplugins/probe.so" }, watch => 1);
    place($server, "$tplugins/probe_defer_fails.so", 'probe');
    ok wait_log($server, qr/plugin probe: refused .*probe\.so: its init failed/), 'the new file is refused';
    ok wait_log($server, qr/probe 3\.0\.0: the job queued in init finished/), 'its job completes (its code is still loaded)';
    ok wait_log($server, qr/probe 3\.0\.0: the timer deferred in init fired/), 'its timer still runs (its code is still loaded)';
    ok wait_log($server, qr/probe 3\.0\.0: deferring again from the timer: refused/), 'but it cannot queue more';
    ok wait_log($server, qr/plugin probe 3\.0\.0: refused copy unloaded/), 'then the refused copy is unloaded';
    my $log = $server->log;
    ok index($log, 'the timer deferred in init fired') < index($log, 'refused copy unloaded'), 'after the timer, not before';
    ok index($log, 'the job queued in init finished') < index($log, 'refused copy unloaded'), 'and after the job';
    my $who = whoami($server);
    is_deeply [$who->{status}, $who->{json}{version}], [200, '1.0.0'], 'generation 1 keeps serving';
    ok alive($server), 'forumd is alive';
    place($server, "$tplugins/probe_v2.so", 'probe');
    ok wait_log($server, qr/plugin probe 2\.0\.0: generation 2 loaded/), 'a good file is swapped in after it';
    is $server->stop, 0, 'forumd exits 0';
};

done_testing;
