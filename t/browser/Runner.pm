package t::browser::Runner;

# Runs a browser test script (t/browser/*.mjs, playwright-core driving Debian's Chromium) under
# node and turns the TAP lines it prints into Test::More tests. Used by t/6N-browser*.t.

use strict;
use warnings;
use Test::More;
use t::Util qw(root_dir);
use Exporter 'import';

our @EXPORT = qw(skip_without_browser run_node report_tap);

my $chromium = '/usr/bin/chromium';

# Skips the whole test file when Chromium or playwright-core is missing.
sub skip_without_browser {
    plan skip_all => "no Chromium at $chromium (Debian package chromium)" unless -x $chromium;
    plan skip_all => 'playwright-core is not installed: run make node-deps (cd t/browser && npm ci)'
        unless -d root_dir() . '/t/browser/node_modules/playwright-core';
}

# run_node($script, $limit_s, @args) runs node from the repository root with stderr joined to
# stdout and kills it after $limit_s seconds; returns (output, exit status).
sub run_node {
    my ($script, $limit, @args) = @_;
    my $pid = open(my $out, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT or die "dup: $!";
        chdir root_dir() or die 'chdir ' . root_dir() . ": $!";
        exec 'node', $script, @args;
        die "exec node: $!";
    }
    my $output = '';
    my $ok = eval {
        local $SIG{ALRM} = sub { die "timeout\n" };
        alarm $limit;
        local $/;
        $output = <$out> // '';
        alarm 0;
        1;
    };
    if (!$ok) {
        kill 'KILL', $pid;
        $output .= "\n# killed: node ran longer than $limit s\n";
    }
    close $out;
    return ($output, $? & 127 ? 128 + ($? & 127) : $? >> 8);
}

# report_tap($name, $script, $output, $exit): one subtest with a test per TAP line of the
# script's output, a check that its plan matches, and one test that it exited with 0.
sub report_tap {
    my ($name, $script, $output, $exit) = @_;
    subtest $name => sub {
        my ($planned, $seen, $failing) = (undef, 0, 0);
        for my $line (split /\n/, $output) {
            if ($line =~ /^(not )?ok (\d+) - (.*)$/) {
                ++$seen;
                $failing = !ok !$1, $3;
            } elsif ($failing && $line =~ /^#/) {
                diag $line;    # what the script printed about the check that failed, next to it
            } elsif ($line =~ /^1\.\.(\d+)$/) {
                $planned = $1;
            }
        }
        ok $seen > 0, "$script ran its checks";
        is $planned, $seen, 'and printed a plan that matches them';
    };
    is $exit, 0, "$script exits with 0";
}

1;
