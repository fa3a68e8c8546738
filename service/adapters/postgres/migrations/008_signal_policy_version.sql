-- The version of the classification policy that classified each signal, next to the reasons it gave:
-- "why critical?" is answered by the rules that fired under a named policy. Signals logged before this
-- column have none (null).
ALTER TABLE signal_log ADD COLUMN policy_version text;
