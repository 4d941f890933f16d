# Plugin settings are declared by each plugin (name, type, range, default) and checked like every
# other key: `forumd -t` and a start refuse an unknown or bad one with FILE:LINE: message (the line
# of its key), without running the plugin's init; a swapped-in generation whose declarations refuse
# the current settings is refused while the old one serves; plugins read checked, typed values.
use strict;
use warnings;
use lib '.';
use File::Copy qw(copy);
use File::Temp qw(tempdir);
use Test::More;
use Time::HiRes qw(sleep time);
use t::Util;

my $build = build_dir();
my $dir = tempdir(CLEANUP => 1);
mkdir "$dir/plugins" or die $!;
copy("$build/plugins/$_.so", "$dir/plugins/$_.so") or die $! for qw(auth posts comments chat);
copy("$build/t-plugins/probe.so", "$dir/plugins/probe.so") or die $!;
my ($cert, $key) = tls_files();

# writes a configuration with `load` and the plugins.settings lines; returns its path and its lines
sub conf_file {
    my ($load, @settings) = @_;
    my $text = <<"YAML";
listen:
  - port: 18443
    host: 127.0.0.1
    ssl:
      certificate-file: $cert
      key-file: $key
@{[ database_yaml("$dir/forum.db") =~ s/\n\z//r ]}
plugins:
  dir: $dir/plugins
  load: [@{[ join ', ', @$load ]}]
YAML
    $text .= "  settings:\n" . join('', map { "    $_\n" } @settings) if @settings;
    my $path = "$dir/forum.yaml";
    open my $fh, '>', $path or die $!;
    print $fh $text;
    close $fh;
    return ($path, [split /\n/, $text]);
}

sub line_of {    # the 1-based line holding $needle
    my ($lines, $needle) = @_;
    for my $i (0 .. $#$lines) { return $i + 1 if index($lines->[$i], $needle) >= 0 }
    die "no line with $needle";
}

sub check {    # forumd -t: (exit code, output)
    my $path = shift;
    my $out = `@{[ forumd_bin() ]} -t -c $path 2>&1`;
    return ($? >> 8, $out);
}

subtest 'forumd -t accepts declared settings with good values' => sub {
    my ($path) = conf_file([qw(auth probe)], 'auth:', '  scrypt-n: 1024', '  login-limit: 3', '  hash-workers: 0', 'probe:',
                           '  fail-init: no', '  answer: 100');
    my ($rc, $out) = check($path);
    is $rc, 0, 'exit 0';
    like $out, qr/the configuration is good/, 'and says so';
    unlike $out, qr/generation|init/, 'no plugin was initialized';
};

my @bad = (
    ['a misspelled setting', [qw(auth)], ['auth:', '  scrypt-n: 1024', '  login-limt: 5'], 'login-limt',
     qr/plugins\.settings\.auth\.login-limt: unknown setting \(plugin auth has: scrypt-n, .*login-limit/],
    ['a value out of range', [qw(auth)], ['auth:', '  login-limit: 0'], 'login-limit',
     qr/plugins\.settings\.auth\.login-limit: expected a whole number from 1 to 1000000 \(found "0"\)/],
    ['a value that is not a number', [qw(auth)], ['auth:', '  login-window: 1m'], 'login-window',
     qr/plugins\.settings\.auth\.login-window: expected a whole number from 1 to 86400 \(found "1m"\)/],
    ['a scrypt-n that is not a power of two', [qw(auth)], ['auth:', '  scrypt-n: 3000'], 'scrypt-n',
     qr/plugins\.settings\.auth\.scrypt-n: must be a power of two \(found "3000"\)/],
    ['a yes/no setting that is neither', [qw(probe)], ['probe:', '  fail-init: maybe'], 'fail-init',
     qr/plugins\.settings\.probe\.fail-init: expected true or false/],
    ['a setting for a plugin without settings', [qw(auth posts)], ['posts:', '  page-size: 20'], 'page-size',
     qr/plugins\.settings\.posts\.page-size: plugin posts has no settings/],
    ['a setting for a plugin that is not loaded', [qw(auth)], ['chat:', '  anything: 1'], 'anything',
     qr/plugins\.settings\.chat\.anything: plugin chat is not in plugins\.load/],
    ['a setting given twice', [qw(auth)], ['auth:', '  login-limit: 5', '  login-window: 60', '  login-limit: 6'], 'login-limit: 6',
     qr/plugins\.settings\.auth\.login-limit: given twice/],
);
for my $case (@bad) {
    my ($name, $load, $settings, $needle, $re) = @$case;
    subtest "forumd -t refuses $name with FILE:LINE" => sub {
        my ($path, $lines) = conf_file($load, @$settings);
        my $line = line_of($lines, $needle);
        my ($rc, $out) = check($path);
        is $rc, 1, 'exit 1';
        like $out, qr/^\Q$path\E:$line: $re/m, "the message names the file and line $line";
        unlike $out, qr/configuration is good/, 'and does not call it good';
    };
}

subtest 'forumd -t refuses a plugin file the host would refuse, at its plugins.load line' => sub {
    copy("$build/t-plugins/wrong_abi.so", "$dir/plugins/chat.so") or die $!;
    my ($path, $lines) = conf_file([qw(auth chat)]);
    my $line = line_of($lines, 'load:');
    my ($rc, $out) = check($path);
    is $rc, 1, 'exit 1';
    like $out, qr/^\Q$path\E:$line: plugins\.load: plugin chat would be refused: .*chat\.so: its plugin ABI is 2, this forumd speaks 3/m,
        'with the reason';
    copy("$build/plugins/chat.so", "$dir/plugins/chat.so") or die $!;
};

subtest 'a start refuses a bad setting the same way' => sub {
    my $server = spawn_forumd(plugins => [qw(auth)], settings => "auth:\n  scrypt-n: 1024\n  login-limt: 5", expect_fail => 1);
    is $server->{exit}, 1, 'forumd does not start';
    my @lines = split /\n/, slurp($server->{conf});
    my $line = line_of(\@lines, 'login-limt');
    like $server->log, qr/plugin auth: refused .*auth\.so: \Q$server->{conf}\E:$line: plugins\.settings\.auth\.login-limt: unknown setting/,
        'the log names the file and line';
    like $server->log, qr/plugin auth could not be loaded/, 'and which plugin stopped the start';
};

subtest 'plugins read checked values, or the declared defaults' => sub {
    my $server = spawn_forumd(plugins => [qw(probe)], settings => "probe:\n  answer: 7");
    my $res = curl_json('curl -s', 'GET', $server->url . '/api/probe/settings');
    is_deeply $res->{json}, { answer => 7, 'fail-init' => JSON::PP::false }, 'the configured answer and the default fail-init';
    $server->stop;
    $server = spawn_forumd(plugins => [qw(probe)]);
    $res = curl_json('curl -s', 'GET', $server->url . '/api/probe/settings');
    is_deeply $res->{json}, { answer => 5, 'fail-init' => JSON::PP::false }, 'the declared defaults without settings';
    $server->stop;
    $server = spawn_forumd(plugins => [qw(probe)], settings => "probe:\n  fail-init: on", expect_fail => 1);
    is $server->{exit}, 1, 'fail-init: on reaches the plugin as true';
};

subtest 'a new generation whose declarations refuse the current settings is refused; the old one serves' => sub {
    my $server = spawn_forumd(plugins => [qw(probe)], plugin_files => { probe => "$build/t-plugins/probe.so" }, watch => 1,
                              settings => "probe:\n  answer: 7");
    my @lines = split /\n/, slurp($server->{conf});
    my $line = line_of(\@lines, 'answer:');
    my $tmp = "$server->{plugin_dir}/.probe.so.new";
    copy("$build/t-plugins/probe_v2.so", $tmp) or die $!;    # version 2 accepts an answer up to 5
    rename $tmp, "$server->{plugin_dir}/probe.so" or die $!;
    my $deadline = time + 10;
    sleep 0.05 while $server->log !~ /plugin probe: refused/ && time < $deadline;
    like $server->log, qr/plugin probe: refused .*probe\.so: \Q$server->{conf}\E:$line: plugins\.settings\.probe\.answer: expected a whole number from 1 to 5 \(found "7"\)/,
        'refused with the setting\'s FILE:LINE';
    unlike $server->log, qr/2\.0\.0: generation 2 loaded/, 'version 2 was not loaded';
    my $who = curl_json('curl -s', 'GET', $server->url . '/api/probe/whoami');
    is $who->{json}{version}, '1.0.0', 'version 1 keeps serving';
    is curl_json('curl -s', 'GET', $server->url . '/api/probe/settings')->{json}{answer}, 7, 'with its settings';
    is $server->stop, 0, 'forumd exits 0';
};

done_testing;
