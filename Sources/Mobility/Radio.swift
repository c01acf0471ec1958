import Core
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The rates a radio can use and the received power each needs.
public struct RateTable: Hashable, Sendable {
    public struct Entry: Hashable, Sendable {
        public var rate: Bitrate
        /// Received power at which a 1000-byte frame at this rate has a 10%
        /// packet error rate (the receiver-sensitivity definition of IEEE 802.11).
        public var sensitivityDBm: Double
        public init(rate: Bitrate, sensitivityDBm: Double) { self.rate = rate; self.sensitivityDBm = sensitivityDBm }
    }
    /// Slowest first.
    public var entries: [Entry]
    /// Steepness of the packet-error curve around each sensitivity, per dB.
    public var errorSlopePerDB: Double

    public init(entries: [Entry], errorSlopePerDB: Double = 1.5) {
        self.entries = entries.sorted { $0.rate < $1.rate }
        self.errorSlopePerDB = errorSlopePerDB
    }

    /// IEEE 802.11p (OFDM at 10 MHz channel spacing, IEEE 802.11-2016 §17.3.10.2):
    /// 3–27 Mbit/s, with the minimum sensitivities of the 20 MHz table lowered by
    /// 3 dB for the halved bandwidth.
    public static let ieee80211p = RateTable(entries: [
        Entry(rate: .kbit(3000), sensitivityDBm: -85),
        Entry(rate: .kbit(4500), sensitivityDBm: -84),
        Entry(rate: .kbit(6000), sensitivityDBm: -82),
        Entry(rate: .kbit(9000), sensitivityDBm: -80),
        Entry(rate: .kbit(12000), sensitivityDBm: -77),
        Entry(rate: .kbit(18000), sensitivityDBm: -73),
        Entry(rate: .kbit(24000), sensitivityDBm: -69),
        Entry(rate: .kbit(27000), sensitivityDBm: -68),
    ])

    /// Packet error rate at `marginDB` above an entry's sensitivity: a logistic
    /// curve through 10% at zero margin, falling about a decade per 1.5 dB above it.
    public func packetErrorRate(marginDB: Double) -> Double {
        1 / (1 + 9 * exp(errorSlopePerDB * marginDB))
    }

    /// The rate a rate-adaptation algorithm settles on at this received power —
    /// the one with the most goodput, rate × (1 − PER), as Minstrel aims for —
    /// and its packet error rate.
    public func operatingPoint(rssiDBm: Double) -> (rate: Bitrate, packetErrorRate: Double) {
        var best = (rate: entries[0].rate, packetErrorRate: packetErrorRate(marginDB: rssiDBm - entries[0].sensitivityDBm))
        var bestGoodput = -1.0
        for e in entries {
            let per = packetErrorRate(marginDB: rssiDBm - e.sensitivityDBm)
            let goodput = Double(e.rate.bitsPerSecond) * (1 - per)
            if goodput > bestGoodput { bestGoodput = goodput; best = (e.rate, per) }
        }
        return best
    }
}

/// A roadside unit's radio as seen from the vehicle.
public enum RadioModel: Hashable, Sendable {
    /// In coverage within `range` metres, at a fixed rate and loss if given.
    case disk(DiskRadio)
    /// Log-distance path loss with log-normal shadowing, mapped to rate and loss.
    case logDistance(LogDistanceRadio)
}

public struct DiskRadio: Hashable, Sendable {
    public var range: Double
    /// Set on the link when the vehicle associates; `nil` leaves the topology's value.
    public var rate: Bitrate?
    public var loss: Probability?
    public init(range: Double, rate: Bitrate? = nil, loss: Probability? = nil) {
        self.range = range; self.rate = rate; self.loss = loss
    }
}

public struct LogDistanceRadio: Hashable, Sendable {
    /// Transmit power plus antenna gains, dBm.
    public var transmitPowerDBm: Double
    /// Path loss at `referenceDistance`, dB (free space at 5.9 GHz and 1 m: 47.9 dB).
    public var referenceLossDB: Double
    public var referenceDistance: Double
    /// Path-loss exponent: 2 in free space, about 2–2.5 along a highway, 3–4 in a city.
    public var exponent: Double
    /// Standard deviation of the log-normal shadowing, dB; 0 turns it off.
    public var shadowingSigmaDB: Double
    /// Distance over which shadowing decorrelates (Gudmundson's model), metres.
    public var decorrelationDistance: Double
    public var rates: RateTable
    /// This unit's own association thresholds (from the topology); when absent
    /// the route's `AssociationPolicy` applies.
    public var associateDBm: Double?
    public var disassociateDBm: Double?

    public init(transmitPowerDBm: Double = 23, referenceLossDB: Double = 47.86, referenceDistance: Double = 1,
                exponent: Double = 2.2, shadowingSigmaDB: Double = 4, decorrelationDistance: Double = 20,
                rates: RateTable = .ieee80211p, associateDBm: Double? = nil, disassociateDBm: Double? = nil) {
        self.associateDBm = associateDBm; self.disassociateDBm = disassociateDBm
        self.transmitPowerDBm = transmitPowerDBm; self.referenceLossDB = referenceLossDB
        self.referenceDistance = referenceDistance; self.exponent = exponent
        self.shadowingSigmaDB = shadowingSigmaDB; self.decorrelationDistance = decorrelationDistance
        self.rates = rates
    }

    /// Mean received power at `distance` metres (no shadowing). Closer than the
    /// reference distance counts as the reference distance.
    public func meanReceivedPowerDBm(distance: Double) -> Double {
        let d = max(distance, referenceDistance)
        return transmitPowerDBm - referenceLossDB - 10 * exponent * log10(d / referenceDistance)
    }

    /// The distance at which the mean received power falls to `dBm`.
    public func distance(atReceivedPowerDBm dBm: Double) -> Double {
        referenceDistance * pow(10, (transmitPowerDBm - referenceLossDB - dBm) / (10 * exponent))
    }
}

/// Log-normal shadowing along the drive, spatially correlated as in
/// Gudmundson's model: each sample keeps exp(−Δd/d_c) of the previous one,
/// where Δd is how far the vehicle moved. Seeded per roadside unit, so the same
/// seed gives the same fades and adding a unit does not change the others'.
struct Shadowing {
    private var random: SeededRandom
    private var value: Double? = nil
    let sigma: Double
    let decorrelationDistance: Double

    init(seed: UInt64, site: String, sigma: Double, decorrelationDistance: Double) {
        random = SeededRandom(seed: seed, stream: "shadowing/" + site)
        self.sigma = sigma
        self.decorrelationDistance = decorrelationDistance
    }

    /// The shadowing in dB after the vehicle moved `moved` metres since the last call.
    mutating func next(moved: Double) -> Double {
        guard sigma > 0 else { return 0 }
        let fresh = random.normal(mean: 0, standardDeviation: sigma)
        guard let previous = value else { value = fresh; return fresh }
        let rho = decorrelationDistance > 0 ? exp(-moved / decorrelationDistance) : 0
        let v = rho * previous + (1 - rho * rho).squareRoot() * fresh
        value = v
        return v
    }
}
