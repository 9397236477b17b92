-- The W3C traceparent of the work that enqueued a job (a request or another job), continued by
-- the worker that runs it. NULL for work outside any trace and for jobs enqueued before.
ALTER TABLE jobs ADD COLUMN traceparent TEXT;
