# The client page in a real browser: Debian's Chromium, driven by playwright-core from
# t/browser/smoke.mjs, loads the page over HTTPS/2 and checks that it runs cleanly under the CSP.
# smoke.mjs prints TAP; each of its lines becomes a test here.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/..";
use Test::More;
use t::Util;

my $chromium = '/usr/bin/chromium';
my $root = root_dir();
my $smoke = 't/browser/smoke.mjs';
my $run_limit = 120;    # seconds; smoke.mjs stops itself after 60

plan skip_all => "no Chromium at $chromium (Debian package chromium)" unless -x $chromium;
plan skip_all => 'playwright-core is not installed: run make node-deps (cd t/browser && npm ci)'
    unless -d "$root/t/browser/node_modules/playwright-core";

my $server = spawn_forumd();
my $url = $server->tls_url;

# Runs node from the repository root with stderr joined to stdout; returns (output, exit status).
sub run_smoke {
    my $pid = open(my $out, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT or die "dup: $!";
        chdir $root or die "chdir $root: $!";
        exec 'node', $smoke, @_;
        die "exec node: $!";
    }
    my $output = '';
    my $ok = eval {
        local $SIG{ALRM} = sub { die "timeout\n" };
        alarm $run_limit;
        local $/;
        $output = <$out> // '';
        alarm 0;
        1;
    };
    if (!$ok) {
        kill 'KILL', $pid;
        $output .= "\n# killed: node ran longer than $run_limit s\n";
    }
    close $out;
    return ($output, $? & 127 ? 128 + ($? & 127) : $? >> 8);
}

my ($output, $exit) = run_smoke($url);

subtest "chromium loads $url/" => sub {
    my ($planned, $seen) = (undef, 0);
    for my $line (split /\n/, $output) {
        if ($line =~ /^(not )?ok (\d+) - (.*)$/) {
            ++$seen;
            ok !$1, $3;
        } elsif ($line =~ /^1\.\.(\d+)$/) {
            $planned = $1;
        }
    }
    ok $seen > 0, 'smoke.mjs ran its checks';
    is $planned, $seen, 'and printed a plan that matches them';
};
is $exit, 0, 'smoke.mjs exits with 0';
is $server->stop, 0, 'forumd stops cleanly';

if (!Test::More->builder->is_passing) {
    diag "node $smoke $url:\n$output";
    diag "forumd's log:\n" . $server->log;
}

done_testing;
