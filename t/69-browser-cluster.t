# The browser behind the front door of several nodes (PostgreSQL only): HAProxy terminates TLS (HTTP/2 and
# HTTP/1.1 by ALPN) and spreads requests and WebSockets over three forumd nodes, which share one PostgreSQL and
# one Redis (bus:). Two members on two different nodes see each other online and typing, and chat; the node of
# one of them is killed in mid-conversation and nothing is lost (t/browser/cluster.mjs).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/..";
use File::Temp qw(tempdir);
use POSIX qw(WNOHANG);
use Test::More;
use t::Util;
use t::browser::Runner;

skip_without_browser();
plan skip_all => 'PostgreSQL only (the nodes of one forum share its database): set FORUMD_TEST_POSTGRES, as make test does'
    unless backend() eq 'postgres';
plan skip_all => 'no HAProxy or Redis (make deps installs haproxy and redis-server)'
    unless -x '/usr/sbin/haproxy' && -x '/usr/bin/redis-server';

my $redis = spawn_redis();
my $db = tempdir(CLEANUP => 1) . '/forum.db';
my @nodes = map {
    spawn_forumd(db => $db, settings => "auth:\n  scrypt-n: 1024",
                 extra => "trusted-proxies: [127.0.0.1/8]\nbus:\n  redis: \"" . $redis->addr . "\"\nnode: web-$_\n")
} 1 .. 3;
my $haproxy = spawn_haproxy(undef, servers => \@nodes);
my $url = $haproxy->url;
my ($output, $exit) = run_node('t/browser/cluster.mjs', 150, $url, join ',', map { $_->port . ':' . $_->pid } @nodes);
report_tap("t/browser/cluster.mjs in chromium through HAProxy at $url/ over three nodes", 't/browser/cluster.mjs', $output, $exit);
# the killed node is this test's child: reaped here, it is no longer the guard's to stop
my @killed = grep { waitpid($_->pid, WNOHANG) == $_->pid && delete $_->{pid} } @nodes;
is scalar(@killed), 1, 'one node was killed in the middle';
$haproxy->stop;
is $_->stop, 0, 'a node that lived stops cleanly' for grep { $_->{pid} } @nodes;
if (!Test::More->builder->is_passing) {
    diag "node t/browser/cluster.mjs $url:\n$output";
    diag "haproxy's log:\n" . $haproxy->log;
    diag "node $_:\n" . $nodes[$_]->log for 0 .. $#nodes;
}

done_testing;
