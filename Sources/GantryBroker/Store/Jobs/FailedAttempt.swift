import Foundation
import GantryProtocol

/// What a job's `errors` records about one failed attempt, built here for every way an attempt fails: a nack,
/// a closed connection, a lease that ran out, a broker that stopped heartbeating. The statement that records it
/// adds what only the row knows (`rowFields`): the attempt's number, the session that held it, when it started and when it failed.
public struct FailedAttempt: Sendable, Equatable {
    /// The record without the row's fields; bound as a parameter.
    let fields: JSONValue

    /// The worker said so, with its error.
    static func nacked(_ error: Nack.Failure, workerID: String?) -> FailedAttempt {
        var fields: JSONObject = ["message": .string(error.message), "reason": "nack"]
        fields["kind"] = error.kind.map(JSONValue.string)
        fields["backtrace"] = error.backtrace
        fields["worker"] = workerID.map(JSONValue.string)
        return FailedAttempt(fields: .object(fields))
    }

    static func connectionClosed(workerID: String?) -> FailedAttempt {
        var fields: JSONObject = [
            "message": "The worker's connection closed before it acked or nacked the job.", "reason": "connection_closed",
        ]
        fields["worker"] = workerID.map(JSONValue.string)
        return FailedAttempt(fields: .object(fields))
    }

    static let leaseExpired = FailedAttempt(fields: [
        "message": "The lease ran out before the worker acked, nacked or extended it.", "reason": "lease_expired",
    ])

    static let brokerLost = FailedAttempt(fields: [
        "message": "The broker holding the worker's connection stopped heartbeating.", "reason": "broker_lost",
    ])

    /// SQL: the fields only the failed row of `gantry.jobs` (as `alias`) knows, to add (`||`) to `fields`; `at`
    /// is the SQL timestamptz of the failure.
    static func rowFields(of alias: String, at: String = "now()") -> String {
        """
        jsonb_build_object('attempt', \(alias).attempt, 'session_id', \(alias).session_id,
                           'started_at', to_char(\(alias).reserved_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                           'at', to_char((\(at)) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
        """
    }
}
