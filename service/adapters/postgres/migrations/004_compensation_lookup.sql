-- Billing answers name only the request id: find the case that asked, by index.
CREATE INDEX events_compensation_request ON events ((data->>'request_id'))
    WHERE type = 'case.compensation_requested';
