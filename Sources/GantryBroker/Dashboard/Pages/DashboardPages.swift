import Foundation
import GantryProtocol
import Hummingbird

/// What each page shows and what each action does; `Dashboard` routes to them. One file per area.
struct DashboardPages: Sendable {
    let broker: Broker

    func seesArgs(_ user: DashboardUser) -> Bool {
        user.role == .admin || broker.configuration.dashboardViewersSeeArgs
    }

    /// A job type in a path segment (`/types/invoice.pay`): types may hold any character but control ones.
    static func pathSegment(_ text: String) -> String { FormFields.encode(text) }
}
