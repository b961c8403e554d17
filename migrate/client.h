/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `vmm migrate [OPTIONS] URI`: drive a running vmm's migration through its
 * monitor socket, show live progress, and succeed only when the migration
 * completed.
 */
#ifndef MIGRATE_CLIENT_H
#define MIGRATE_CLIENT_H

/* Run the command; returns the process exit status (0 completed, 1 failed, 2 usage/connection). */
int migrate_client(int argc, char **argv);

#endif
