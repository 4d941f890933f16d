/* A shared object without the forum_plugin descriptor: the host must refuse it. */
#include "forum_plugin.h"

FORUM_EXPORT int not_a_plugin(void);
FORUM_EXPORT int not_a_plugin(void)
{
    return 42;
}
