-- gpuhealth schema, migration 008: the index that serves GET /api/v1/gpus page by page.
-- The API lists GPUs in host, index, key order and pages by keyset: the next page starts
-- after the last row of the previous one, (COALESCE(hostname, ''), COALESCE(gpu_index, -1),
-- gpu_key) > (cursor). A btree on exactly those expressions answers each page with an index
-- range scan of `limit` rows, whatever the page's depth (no OFFSET, no sort of the whole
-- fleet: ~200,000 GPUs). gpu_key (the primary key) makes every position unique; the
-- COALESCEs give GPUs without a host or index a place (first) that a row comparison can name.
CREATE INDEX gpus_page_idx ON gpus ((COALESCE(hostname, '')), (COALESCE(gpu_index, -1)), gpu_key);
