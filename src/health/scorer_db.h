/*
 * scorer_db: the scorer's database side (private to the scorer's files in src/health; struct
 * scorer is scorer_int.h's), on the scorer thread's own connection: connecting (a read-only
 * server refused), the staging tables, the schema's optional parts (alerts' workload columns,
 * schema 13; the fleet's newest state, schema 14), the retention, and once the alerts left open
 * (restored into the health engine and Alertmanager); then each batch in one transaction:
 * scores and predictions by COPY into temporary tables and inserted ignoring the rows present,
 * the fleet's newest state merged, the alert rows raised or cleared. A statement that fails
 * with a SQLSTATE a new session may get past (pg_sqlstate_reconnect) closes the connection.
 */
#ifndef GPUHEALTH_HEALTH_SCORER_DB_H
#define GPUHEALTH_HEALTH_SCORER_DB_H

struct scorer;

/* Connects when there is no usable connection. Returns 0 or -EIO (the error in the stats). */
int scorer_db_ensure(struct scorer *s);
/* The open batch in one transaction. Returns 0 or -EIO (rolled back; the batch is kept). */
int scorer_db_write(struct scorer *s);
void scorer_db_close(struct scorer *s);

#endif
