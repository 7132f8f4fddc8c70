extension Migration {
    /// Finished and failed attempts per queue and minute, so `stats` can say what happened in the last minute and
    /// hour. A trigger on the counters fills it (every path that counts an attempt counts it here too); slots as
    /// in `queue_counters`, so concurrent writers do not queue on one row. The cleaner drops old minutes.
    static let v0005 = Migration(version: 5, name: "recent activity", statements: [
        #"""
        CREATE TABLE gantry.queue_activity (
            queue   text        NOT NULL,
            minute  timestamptz NOT NULL,
            counter text        NOT NULL,
            slot    smallint    NOT NULL,
            value   bigint      NOT NULL,
            PRIMARY KEY (queue, minute, counter, slot)
        )
        """#,
        #"""
        CREATE INDEX queue_activity_age ON gantry.queue_activity (minute)
        """#,
        #"""
        CREATE FUNCTION gantry.track_activity() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
            INSERT INTO gantry.queue_activity AS a (queue, minute, counter, slot, value)
            VALUES (NEW.queue, date_trunc('minute', now()), NEW.counter, NEW.slot,
                    NEW.value - CASE WHEN TG_OP = 'UPDATE' THEN OLD.value ELSE 0 END)
            ON CONFLICT (queue, minute, counter, slot) DO UPDATE SET value = a.value + excluded.value;
            RETURN NULL;
        END
        $fn$
        """#,
        #"""
        CREATE TRIGGER counters_activity AFTER INSERT OR UPDATE ON gantry.queue_counters
            FOR EACH ROW WHEN (NEW.counter IN ('processed', 'failed')) EXECUTE FUNCTION gantry.track_activity()
        """#,
    ])
}
