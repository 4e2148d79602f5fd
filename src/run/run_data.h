// The data of a run: the config's data section as the data layer's options.
#ifndef MP_RUN_RUN_DATA_H
#define MP_RUN_RUN_DATA_H

#include "config/config.h"
#include "data/data.h"

// The data section of config, with the seed of its train section.
void run_data_options(const RunConfig *config, DataOptions *options);

#endif
