-- The W3C traceparent of what caused an event (a signal's CloudEvents distributed-tracing extension, a
-- command's request header), validated before it is stored; NULL when there was none. The relay publishes
-- it as the outgoing record's ce_traceparent, so a trace continues through the event log. A nullable column
-- without a default: adding it rewrites nothing.
ALTER TABLE events ADD COLUMN traceparent text;
