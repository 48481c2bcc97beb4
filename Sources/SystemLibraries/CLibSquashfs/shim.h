#include <sqfs/super.h>
