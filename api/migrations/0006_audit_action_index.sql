-- The public register counts each project's DataSHIELD analyses (`datashield.aggregate`
-- records) on every view: an index on the action keeps that from reading the whole log.
CREATE INDEX audit_records_action ON audit_records (action, project);
