# The forum in a real browser: t/browser/feed.mjs registers two users in two browser contexts, pages
# through the feed with "Load more", filters it by category (in the URL), writes a post through the
# form (its errors first) and comments on it, and checks that posts, comments and comment counts
# reach the other user's open tabs live. It prints TAP; each line becomes a test.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/..";
use Test::More;
use t::Util;
use t::browser::Runner;

my $script = 't/browser/feed.mjs';
my $run_limit = 180;    # seconds; feed.mjs stops itself after 120

skip_without_browser();

# a fresh server (feed.mjs counts every post) with cheap password hashing
my $server = spawn_forumd(settings => "auth:\n  scrypt-n: 1024");
my $url = $server->tls_url;
my ($output, $exit) = run_node($script, $run_limit, $url);
report_tap("the forum in chromium at $url/", $script, $output, $exit);
is $server->stop, 0, 'forumd stops cleanly';

if (!Test::More->builder->is_passing) {
    diag "node $script $url:\n$output";
    diag "forumd's log:\n" . $server->log;
}

done_testing;
