# The plugin host: the feature plugins load and report themselves; a bad plugin file is refused with
# one clear log line and, at startup, forumd does not start half-built.
use strict;
use warnings;
use lib '.';
use File::Temp qw(tempdir);
use Test::More;
use t::Util;

subtest 'the five feature plugins load and report themselves' => sub {
    my $server = spawn_forumd();
    my $log = $server->log;
    for my $name (qw(auth posts comments chat rooms)) {
        like $log, qr/plugin $name \S+: generation 1 loaded/, "$name is in the log";
    }
    my $status = curl_json('curl -s', 'GET', $server->url . '/_status');
    is $status->{status}, 200, '/_status answers loopback';
    is_deeply [map { $_->{name} } @{ $status->{json}{plugins} }], [qw(auth posts comments chat rooms)], 'and lists them in load order';
    is_deeply [map { $_->{generation} } @{ $status->{json}{plugins} }], [1, 1, 1, 1, 1], 'each at generation 1';
    like $status->{json}{plugins}[0]{loaded_at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'with an ISO-8601 load time';
    ok exists $status->{json}{connections}{$_}, "and the $_ connection count" for qw(http websocket);
    is $server->stop, 0, 'stops cleanly';
    like $server->log, qr/plugin chat \S+: generation 1 unloaded/, 'and unloads its plugins';
};

my $tdir = tempdir(CLEANUP => 1);
open my $fh, '>', "$tdir/garbage.so" or die $!;
print $fh "this is not an ELF file\n";
close $fh;

my @refused = (
    ['wrong ABI', build_dir() . '/t-plugins/wrong_abi.so', qr/plugin chat: refused .*chat\.so: its plugin ABI is 2, this forumd speaks 3/],
    ['no descriptor', build_dir() . '/t-plugins/no_descriptor.so', qr/plugin chat: refused .*: it exports no forum_plugin descriptor/],
    ['init fails', build_dir() . '/t-plugins/init_fails.so', qr/plugin chat: refused .*: its descriptor is incomplete or names another plugin \(init_fails\)/],
    ['not a shared object', "$tdir/garbage.so", qr/plugin chat: refused .*chat\.so: .*(invalid ELF|file too short)/],
);
for my $case (@refused) {
    my ($name, $file, $re) = @$case;
    subtest "a plugin file with $name is refused" => sub {
        my $server = spawn_forumd(plugin_files => { chat => $file }, expect_fail => 1);
        is $server->{exit}, 1, 'forumd does not start without a plugin it was told to load';
        my $log = $server->log;
        like $log, $re, 'one clear line says why';
        like $log, qr/plugin chat could not be loaded/, 'and which plugin stopped the start';
        unlike $log, qr/listening on/, 'nothing was listening';
    };
}

subtest 'a plugin whose init fails keeps nothing it registered' => sub {
    my $server = spawn_forumd(plugins => [qw(probe init_fails)], expect_fail => 1);
    is $server->{exit}, 1, 'forumd does not start';
    like $server->log, qr/plugin init_fails: refused .*: its init failed/, 'the init failure is logged';
};

subtest 'a plugin setting reaches the plugin' => sub {
    my $server = spawn_forumd(plugins => [qw(probe)], settings => "probe:\n  fail-init: yes", expect_fail => 1);
    is $server->{exit}, 1, 'the probe refuses to start when told to';
    like $server->log, qr/plugin probe: refused .*: its init failed/, 'through plugins.settings';
};

done_testing;
