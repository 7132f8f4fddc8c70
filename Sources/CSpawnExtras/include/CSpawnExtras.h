#ifndef GANTRY_CSPAWNEXTRAS_H
#define GANTRY_CSPAWNEXTRAS_H

#include <spawn.h>

/// glibc's non-portable posix_spawn file actions, which Swift's Glibc module leaves out (they need _GNU_SOURCE).
/// Each returns 0, or an errno value; ENOSYS where the C library lacks the action.

/// In the child, closes every descriptor from `lowest` up: a child inherits only the descriptors we give it.
int gantry_spawn_add_closefrom(posix_spawn_file_actions_t *actions, int lowest);

/// In the child, changes to `directory` before the program starts.
int gantry_spawn_add_chdir(posix_spawn_file_actions_t *actions, const char *directory);

#endif
