#ifndef GANTRY_CLIBPQ_SHIM_H
#define GANTRY_CLIBPQ_SHIM_H

// libpq (Debian's libpq-dev), which the broker drives in pipeline mode for its hot statements.
#include <postgresql/libpq-fe.h>
#include <sys/eventfd.h>
#include <poll.h>

#endif
