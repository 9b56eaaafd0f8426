/*
 * exitcode: the exit statuses of the CLI contract (../shared/contracts/cli.md), for every mode
 * and every module that returns one (db migrate, kafka init, status, the services' drivers).
 */
#ifndef GPUHEALTH_EXITCODE_H
#define GPUHEALTH_EXITCODE_H

enum { CLI_EXIT_OK = 0, CLI_EXIT_FAILURE = 1, CLI_EXIT_USAGE = 2 };

#endif
