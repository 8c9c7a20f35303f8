-- rule: changing-column-type
-- verdict: safe
-- context: a large table: audit_events, 300,000 rows built by the bench and ANALYZEd; code is varchar(20); phaseflag is given the live catalog
-- catalog: large
-- disagreement: squawk flags every ALTER COLUMN … TYPE; the catalog says code is character varying(20), and widening a varchar (or making it text) does not rewrite the table, so phaseflag, given the catalog, clears it
ALTER TABLE audit_events ALTER COLUMN code TYPE varchar(40);
