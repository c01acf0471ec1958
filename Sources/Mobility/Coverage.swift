import Core

/// A roadside unit as the coverage computation needs it: where it stands, its
/// radio, and the name of the vehicle's link to it (as the topology names
/// links: `name:` or `<a>-<b>`).
public struct RoadsideUnitSite: Hashable, Sendable {
    public var name: String
    public var link: String
    public var position: Point
    public var radio: RadioModel
    public init(name: String, link: String, position: Point, radio: RadioModel) {
        self.name = name; self.link = link; self.position = position; self.radio = radio
    }
}

/// When the vehicle associates with a roadside unit and when it lets go.
/// Two thresholds with a margin between them, and a hold time for which the
/// condition must last, keep coverage from flapping at the edge of a cell or
/// in a shadowing fade.
public struct AssociationPolicy: Hashable, Sendable {
    /// Log-distance radios: associate at or above this received power (dBm);
    /// `nil` means the sensitivity of the slowest rate.
    public var associateDBm: Double?
    /// Log-distance radios: stay associated until the power falls at least this
    /// far below the association threshold (a unit's own `disassociateDBm` may
    /// ask for more).
    public var marginDB: Double
    /// Disk radios: stay associated until this far beyond the range (metres).
    public var rangeMargin: Double
    /// How long a change of condition must last before association changes;
    /// `nil` means 0 for disk radios and 300 ms for log-distance radios.
    public var hold: Interval?

    public init(associateDBm: Double? = nil, marginDB: Double = 3, rangeMargin: Double = 0, hold: Interval? = nil) {
        self.associateDBm = associateDBm; self.marginDB = marginDB
        self.rangeMargin = rangeMargin; self.hold = hold
    }
}

/// Settings of one coverage computation.
public struct CoverageSettings: Hashable, Sendable {
    /// How often the radio is sampled along the drive.
    public var step: Interval
    public var seed: UInt64
    /// How leaving coverage shows itself to the vehicle.
    public var loss: CoverageLoss
    public var association: AssociationPolicy
    /// A change of loss smaller than this (absolute probability) is not sent
    /// to the link, so the timeline follows the radio without an event per sample.
    public var lossResolution: Double

    public init(step: Interval = .milliseconds(100), seed: UInt64 = 1, loss: CoverageLoss = .carrier,
                association: AssociationPolicy = AssociationPolicy(), lossResolution: Double = 0.01) {
        self.step = step; self.seed = seed; self.loss = loss
        self.association = association; self.lossResolution = lossResolution
    }
}

/// What the radio looked like at one sample, for plots and checks.
public struct RadioSample: Hashable, Sendable {
    public var at: Interval
    public var distance: Double
    /// Received power with shadowing; `nil` for disk radios.
    public var receivedPowerDBm: Double?
    public var associated: Bool
    /// Rate and loss in force while associated.
    public var rate: Bitrate?
    public var loss: Probability?
}

/// The coverage of a drive: the timeline for the emulator and the samples it was made from.
public struct DriveCoverage: Sendable {
    public var timeline: CoverageTimeline
    /// Per roadside unit (in the order given), one sample per step.
    public var samples: [String: [RadioSample]]
    public var sites: [RoadsideUnitSite]
    public var trajectory: Trajectory?
}

extension DriveCoverage {
    /// Samples the radio of every site along `trajectory` from 0 to `duration`
    /// and turns association changes into coverage events and radio changes into
    /// rate/loss settings. At time zero every site's link gets its initial state.
    public static func compute(trajectory: Trajectory, sites: [RoadsideUnitSite], duration: Interval,
                               settings: CoverageSettings = CoverageSettings()) -> DriveCoverage {
        precondition(settings.step > .zero, "sampling step must be positive")
        var events: [TimelineEvent] = []
        var samples: [String: [RadioSample]] = [:]
        for site in sites {
            var coverage = SiteCoverage(site: site, trajectory: trajectory, settings: settings)
            let (e, s) = coverage.run(duration: duration)
            events += e
            samples[site.name] = s
        }
        return DriveCoverage(timeline: CoverageTimeline(events: events, duration: duration),
                             samples: samples, sites: sites, trajectory: trajectory)
    }
}

/// The association state machine of one roadside unit along the drive.
struct SiteCoverage {
    let site: RoadsideUnitSite
    let trajectory: Trajectory
    let settings: CoverageSettings
    var shadowing: Shadowing?

    init(site: RoadsideUnitSite, trajectory: Trajectory, settings: CoverageSettings) {
        self.site = site; self.trajectory = trajectory; self.settings = settings
        if case let .logDistance(r) = site.radio {
            shadowing = Shadowing(seed: settings.seed, site: site.name, sigma: r.shadowingSigmaDB,
                                  decorrelationDistance: r.decorrelationDistance)
        }
    }

    var hold: Interval {
        if let h = settings.association.hold { return h }
        if case .disk = site.radio { return .zero }
        return .milliseconds(300)
    }

    /// Disk radios: whether the vehicle is within range at `t` (`associated`
    /// selects the leave threshold, range + margin).
    func diskCondition(_ r: DiskRadio, at t: Interval, associated: Bool) -> Bool {
        let d = trajectory.position(at: t).distance(to: site.position)
        return d <= r.range + (associated ? settings.association.rangeMargin : 0)
    }

    /// The first instant in (lo, hi] at which the disk condition equals `target`,
    /// to the nanosecond; the distance is continuous, so bisection finds the crossing.
    func diskCrossing(_ r: DiskRadio, after lo: Interval, atOrBefore hi: Interval, associated: Bool, target: Bool) -> Interval {
        var lo = lo, hi = hi
        while (hi - lo).nanoseconds > 1 {
            let mid = lo + Interval(nanoseconds: (hi - lo).nanoseconds / 2)
            if diskCondition(r, at: mid, associated: associated) == target { hi = mid } else { lo = mid }
        }
        return hi
    }

    mutating func run(duration: Interval) -> ([TimelineEvent], [RadioSample]) {
        var events: [TimelineEvent] = []
        var samples: [RadioSample] = []
        var associated = false
        /// When the condition for switching began to hold, if it holds now.
        var pendingSince: Interval? = nil
        var lastRate: Bitrate? = nil
        var lastLoss: Probability? = nil
        var previousPosition = trajectory.position(at: .zero)
        var previousT = Interval.zero
        var t = Interval.zero
        let link = site.link
        let loss = settings.loss
        // The unit's own thresholds first, then the route's policy, then the
        // slowest rate's sensitivity.
        var associateDBm = 0.0, disassociateDBm = 0.0
        if case let .logDistance(r) = site.radio {
            associateDBm = r.associateDBm ?? settings.association.associateDBm ?? r.rates.entries[0].sensitivityDBm
            // The route's margin is the least hysteresis; a unit may ask for more.
            disassociateDBm = min(r.disassociateDBm ?? associateDBm, associateDBm - settings.association.marginDB)
        }

        func operatingPoint(rssi: Double?) -> (Bitrate?, Probability?) {
            switch site.radio {
            case let .disk(r): return (r.rate, r.loss)
            case let .logDistance(r):
                let op = r.rates.operatingPoint(rssiDBm: rssi ?? -200)
                // Thousandths: finer than any loss measurement of a run can tell apart.
                // A position far off the map can make the power NaN: no link then.
                let per = op.packetErrorRate.isNaN ? 1 : op.packetErrorRate
                let p = (per * 1000).rounded() / 1000
                return (op.rate, Probability(min(max(p, 0), 1)))
            }
        }

        while true {
            let position = trajectory.position(at: t)
            let distance = position.distance(to: site.position)
            var rssi: Double? = nil
            let wantsChange: Bool
            switch site.radio {
            case let .disk(r):
                wantsChange = diskCondition(r, at: t, associated: associated) != associated
            case let .logDistance(r):
                let s = shadowing!.next(moved: position.distance(to: previousPosition))
                let p = r.meanReceivedPowerDBm(distance: distance) + s
                rssi = p
                wantsChange = associated ? p < disassociateDBm : p >= associateDBm
            }

            if t == .zero {
                // The initial state, without hold.
                associated = wantsChange
                if associated {
                    let (rate, lossP) = operatingPoint(rssi: rssi)
                    if rate != nil || lossP != nil {
                        events.append(TimelineEvent(at: t, link: link, change: .set(LinkParameters(rate: rate, loss: lossP))))
                    }
                    lastRate = rate; lastLoss = lossP
                }
                events.append(TimelineEvent(at: t, link: link, change: .coverage(associated, loss: loss)))
            } else if wantsChange {
                if pendingSince == nil {
                    if case let .disk(r) = site.radio {
                        pendingSince = diskCrossing(r, after: previousT, atOrBefore: t, associated: associated, target: !associated)
                    } else {
                        pendingSince = t
                    }
                }
                if let since = pendingSince, t >= since + hold {
                    let at = since + hold
                    associated.toggle()
                    pendingSince = nil
                    if associated {
                        let (rate, lossP) = operatingPoint(rssi: rssi)
                        if rate != nil || lossP != nil {
                            events.append(TimelineEvent(at: at, link: link, change: .set(LinkParameters(rate: rate, loss: lossP))))
                        }
                        lastRate = rate; lastLoss = lossP
                    }
                    events.append(TimelineEvent(at: at, link: link, change: .coverage(associated, loss: loss)))
                }
            } else {
                pendingSince = nil
                if associated, case .logDistance = site.radio {
                    let (rate, lossP) = operatingPoint(rssi: rssi)
                    let lossMoved = abs((lossP?.value ?? 0) - (lastLoss?.value ?? 0)) >= settings.lossResolution
                        || ((lossP?.value ?? 0) == 0) != ((lastLoss?.value ?? 0) == 0)
                    if rate != lastRate || lossMoved {
                        events.append(TimelineEvent(at: t, link: link, change: .set(LinkParameters(rate: rate, loss: lossP))))
                        lastRate = rate; lastLoss = lossP
                    }
                }
            }

            samples.append(RadioSample(at: t, distance: distance, receivedPowerDBm: rssi, associated: associated,
                                       rate: associated ? lastRate : nil, loss: associated ? lastLoss : nil))
            previousPosition = position
            previousT = t
            if t >= duration { break }
            t = min(t + settings.step, duration)
        }
        return (events, samples)
    }
}
