import Testing
import Wire
@testable import MPTCP

/// Connection-level data sequence: send side, receive side and subflow
/// mappings (RFC 8684 §3.3). Test names are `state_event_result`.
@Suite("MPTCP data sequence (RFC 8684 §3.3)")
struct DataSequenceTests {
    static let idsn = DataSequenceNumber(0xFFFF_FFFF_FFFF_FF00) // wraps 2^64 within the test data
    static let a = SubflowID(1), b = SubflowID(2)

    func sender(window: Int = 10_000, bytes: Int = 3000) -> DataSender {
        var s = DataSender(initialDataSequenceNumber: Self.idsn, initialPeerWindow: window)
        s.write((0 ..< bytes).map { UInt8(truncatingIfNeeded: $0) })
        return s
    }

    // MARK: send side

    @Test func sender_fresh_firstChunkStartsAtIDSNPlusOne() {
        var s = sender()
        let chunk = s.nextChunk(for: Self.a, maximumLength: 1000)!
        #expect(chunk.dataSequenceNumber == Self.idsn + 1)
        #expect(chunk.bytes == (0 ..< 1000).map { UInt8(truncatingIfNeeded: $0) })
        #expect(!chunk.dataFIN && !chunk.isReinjection)
        #expect(s.bytesInFlight == 1000)
        #expect(s.unsentBytes == 2000)
    }

    @Test func sender_peerWindowFull_sendsNothingMore() {
        var s = sender(window: 1500)
        #expect(s.nextChunk(for: Self.a, maximumLength: 1000)?.bytes.count == 1000)
        #expect(s.nextChunk(for: Self.a, maximumLength: 1000)?.bytes.count == 500)
        #expect(s.nextChunk(for: Self.a, maximumLength: 1000) == nil)
    }

    @Test func sender_dataACKWithWindow_opensRightEdgeAndReleasesData() {
        var s = sender(window: 1000)
        var counters = MPTCPCounters()
        _ = s.nextChunk(for: Self.a, maximumLength: 1000)
        let outcome = s.acknowledge(Self.idsn + 1 + 600, window: 2000, counters: &counters)
        #expect(outcome.newlyAcknowledged == 600)
        #expect(s.unacknowledged == Self.idsn + 601)
        #expect(s.peerWindowRightEdge == Self.idsn + 2601)
        #expect(s.bufferedBytes == 2400)
        #expect(s.nextChunk(for: Self.a, maximumLength: 5000)?.bytes.count == 1600)
    }

    @Test func sender_windowShrinkOffered_rightEdgeStays() {
        var s = sender(window: 2000)
        var counters = MPTCPCounters()
        _ = s.acknowledge(Self.idsn + 1, window: 100, counters: &counters)
        #expect(s.peerWindowRightEdge == Self.idsn + 2001)
    }

    @Test func sender_dataACKBeyondSent_isIgnoredAndCounted() {
        var s = sender()
        var counters = MPTCPCounters()
        _ = s.nextChunk(for: Self.a, maximumLength: 100)
        let outcome = s.acknowledge(Self.idsn + 1 + 500, window: 10_000, counters: &counters)
        #expect(outcome.newlyAcknowledged == 0)
        #expect(s.unacknowledged == Self.idsn + 1)
        #expect(counters.dataACKsInvalid == 1)
    }

    @Test func sender_closedAfterData_dataFINRidesOnLastChunkAndIsAcknowledged() {
        var s = sender(bytes: 100)
        var counters = MPTCPCounters()
        s.close()
        let chunk = s.nextChunk(for: Self.a, maximumLength: 1000)!
        #expect(chunk.bytes.count == 100 && chunk.dataFIN)
        #expect(chunk.dataLevelLength == 101)
        #expect(s.nextChunk(for: Self.a, maximumLength: 1000) == nil)
        #expect(!s.hasDataToSend)
        let outcome = s.acknowledge(Self.idsn + 1 + 101, window: nil, counters: &counters)
        #expect(outcome.dataFINAcknowledged && s.dataFINAcknowledged)
    }

    @Test func sender_closedWithNothingUnsent_sendsBareDataFINMappedAtSubflowZero() {
        var s = sender(bytes: 10)
        _ = s.nextChunk(for: Self.a, maximumLength: 1000)
        s.close()
        let fin = s.nextChunk(for: Self.a, maximumLength: 1000)!
        #expect(fin.bytes.isEmpty && fin.dataFIN && fin.dataSequenceNumber == Self.idsn + 11)
        let mapping = fin.mapping(subflowSequence: 11, checksums: false)
        #expect(mapping.subflowSequenceNumber == 0 && mapping.dataLevelLength == 1)
    }

    @Test func sender_subflowFails_outstandingDataIsReinjectedOnAnother() {
        var s = sender()
        var counters = MPTCPCounters()
        let first = s.nextChunk(for: Self.a, maximumLength: 1000)!
        _ = s.nextChunk(for: Self.b, maximumLength: 1000)
        _ = s.acknowledge(Self.idsn + 1 + 400, window: 10_000, counters: &counters)
        #expect(s.reinjectOutstanding(on: Self.a, counters: &counters) == 600)
        let again = s.nextChunk(for: Self.b, maximumLength: 5000)!
        #expect(again.isReinjection)
        #expect(again.dataSequenceNumber == first.dataSequenceNumber + 400)
        #expect(again.bytes == Array(first.bytes[400...]))
        #expect(counters.reinjections == 1 && counters.reinjectedBytes == 600)
        // Then new data continues where it left off.
        #expect(s.nextChunk(for: Self.b, maximumLength: 5000)?.dataSequenceNumber == Self.idsn + 2001)
    }

    @Test func sender_reinjectionAcknowledgedMeanwhile_isSkipped() {
        var s = sender()
        var counters = MPTCPCounters()
        _ = s.nextChunk(for: Self.a, maximumLength: 1000)
        s.reinjectOutstanding(on: Self.a, counters: &counters)
        _ = s.acknowledge(Self.idsn + 1001, window: 10_000, counters: &counters)
        let next = s.nextChunk(for: Self.b, maximumLength: 500)!
        #expect(!next.isReinjection && next.dataSequenceNumber == Self.idsn + 1001)
    }

    @Test func sender_redundantCopyOnLiveSubflow_failureNeedsNoReinjection() {
        var s = sender()
        var counters = MPTCPCounters()
        let chunk = s.nextChunk(for: Self.a, maximumLength: 1000)!
        s.record(chunk, on: Self.b)
        #expect(s.reinjectOutstanding(on: Self.a, counters: &counters) == 0)
        #expect(counters.reinjections == 0)
    }

    @Test func sender_reinjectionLargerThanSegment_isSplit() {
        var s = sender()
        var counters = MPTCPCounters()
        _ = s.nextChunk(for: Self.a, maximumLength: 1000)
        s.reinjectOutstanding(on: Self.a, counters: &counters)
        #expect(s.nextChunk(for: Self.b, maximumLength: 600)?.bytes.count == 600)
        let rest = s.nextChunk(for: Self.b, maximumLength: 600)!
        #expect(rest.isReinjection && rest.bytes.count == 400 && rest.dataSequenceNumber == Self.idsn + 601)
    }

    @Test func chunk_withChecksums_mappingVerifiesAtReceiver() {
        let chunk = DataChunk(dataSequenceNumber: DataSequenceNumber(0x1122_3344_5566_7788), bytes: Array("hello".utf8))
        let m = chunk.mapping(subflowSequence: 42, checksums: true)
        #expect(dssChecksum(dataSequenceNumber: m.dataSequenceNumber, relativeSubflowSequenceNumber: 42,
                            dataLevelLength: 5, checksum: m.checksum!, payload: chunk.bytes) == 0)
    }

    // MARK: receive side

    @Test func reassembly_inOrder_deliversAndAdvancesDataACK() {
        var r = DataReassembly(remoteIDSN: Self.idsn, capacity: 10_000)
        var counters = MPTCPCounters()
        let o = r.receive(Self.idsn + 1, [1, 2, 3], counters: &counters)
        #expect(o.newlyReadable == 3 && r.expected == Self.idsn + 4)
        #expect(r.read() == [1, 2, 3])
    }

    @Test func reassembly_outOfOrderAcrossSubflows_deliversInOrderOnce() {
        var r = DataReassembly(remoteIDSN: Self.idsn, capacity: 10_000)
        var counters = MPTCPCounters()
        #expect(r.receive(Self.idsn + 4, [4, 5, 6], counters: &counters).newlyReadable == 0)
        #expect(r.expected == Self.idsn + 1 && r.outOfOrderBytes == 3)
        #expect(r.receive(Self.idsn + 1, [1, 2, 3], counters: &counters).newlyReadable == 6)
        #expect(r.read() == [1, 2, 3, 4, 5, 6])
    }

    @Test func reassembly_duplicatesAndOverlaps_areHarmlessAndCounted() {
        var r = DataReassembly(remoteIDSN: Self.idsn, capacity: 10_000)
        var counters = MPTCPCounters()
        _ = r.receive(Self.idsn + 3, [3, 4], counters: &counters)
        _ = r.receive(Self.idsn + 6, [6, 7], counters: &counters)
        // Covers both pieces and the gaps around them; the stored bytes win, the gaps fill.
        let o = r.receive(Self.idsn + 2, [2, 99, 99, 5, 99, 99, 8], counters: &counters)
        #expect(o.duplicate == 4)
        _ = r.receive(Self.idsn + 1, [1], counters: &counters)
        #expect(r.read() == [1, 2, 3, 4, 5, 6, 7, 8])
        let again = r.receive(Self.idsn + 1, [1, 2, 3], counters: &counters)
        #expect(again.duplicate == 3 && again.newlyReadable == 0)
        #expect(counters.duplicateDataBytes == 7)
    }

    @Test func reassembly_beyondWindow_isDroppedAndCounted() {
        var r = DataReassembly(remoteIDSN: Self.idsn, capacity: 4)
        var counters = MPTCPCounters()
        let o = r.receive(Self.idsn + 1, [1, 2, 3, 4, 5, 6], counters: &counters)
        #expect(o.newlyReadable == 4 && o.beyondWindow == 2)
        #expect(r.window == 0)
        #expect(counters.dataBeyondWindowBytes == 2)
    }

    @Test func reassembly_applicationReads_windowReopensAndNeverShrinks() {
        var r = DataReassembly(remoteIDSN: Self.idsn, capacity: 4)
        var counters = MPTCPCounters()
        #expect(r.windowToAdvertise() == 4)
        _ = r.receive(Self.idsn + 1, [1, 2, 3], counters: &counters)
        #expect(r.windowToAdvertise() == 1)
        _ = r.read(maximum: 2)
        #expect(r.windowToAdvertise() == 3)
    }

    @Test func reassembly_outOfOrderData_doesNotShrinkTheWindow() {
        // The sender's right edge is data ACK + window; bytes held above a hole
        // are inside that range, so the edge it computes must still be accepted.
        var r = DataReassembly(remoteIDSN: Self.idsn, capacity: 4)
        var counters = MPTCPCounters()
        _ = r.receive(Self.idsn + 2, [2, 3], counters: &counters)
        #expect(r.windowToAdvertise() == 4)
        let o = r.receive(Self.idsn + 4, [4], counters: &counters)
        #expect(o.beyondWindow == 0)
        _ = r.receive(Self.idsn + 1, [1], counters: &counters)
        #expect(r.read() == [1, 2, 3, 4])
    }

    @Test func reassembly_dataFINBeforeLastData_isReachedWhenDataArrives() {
        var r = DataReassembly(remoteIDSN: Self.idsn, capacity: 100)
        var counters = MPTCPCounters()
        #expect(!r.receiveDataFIN(at: Self.idsn + 3, counters: &counters).dataFINReached)
        let o = r.receive(Self.idsn + 1, [1, 2], counters: &counters)
        #expect(o.dataFINReached && r.dataFINReceived)
        #expect(r.expected == Self.idsn + 4) // the DATA_FIN is acknowledged too
    }

    // MARK: subflow mappings

    @Test func mapper_mappingThenData_yieldsDataAtDSN() {
        var m = SubflowDataMapper(checksumsEnabled: false)
        var counters = MPTCPCounters()
        let dsn = DataSequenceNumber(5000)
        #expect(m.receive(mapping: DSSMapping(dataSequenceNumber: 5000, subflowSequenceNumber: 1, dataLevelLength: 4),
                          dataFIN: false, reference: dsn, counters: &counters) == .accepted)
        #expect(m.receive(subflowSequence: SequenceNumber(1), [1, 2], counters: &counters) == [.data(dsn, [1, 2])])
        #expect(m.receive(subflowSequence: SequenceNumber(3), [3, 4, 5], counters: &counters) == [.data(dsn + 2, [3, 4])])
        // The fifth byte has no mapping yet: held.
        #expect(m.unmappedBytes == 1)
        _ = m.receive(mapping: DSSMapping(dataSequenceNumber: 9000, subflowSequenceNumber: 5, dataLevelLength: 1),
                      dataFIN: false, reference: dsn, counters: &counters)
        #expect(m.drain(counters: &counters) == [.data(DataSequenceNumber(9000), [5])])
    }

    @Test func mapper_dataBeforeMapping_isHeldUntilMappingArrives() {
        var m = SubflowDataMapper(checksumsEnabled: false)
        var counters = MPTCPCounters()
        #expect(m.receive(subflowSequence: SequenceNumber(1), [1, 2, 3], counters: &counters).isEmpty)
        #expect(m.unmappedBytes == 3)
        _ = m.receive(mapping: DSSMapping(dataSequenceNumber: 70, subflowSequenceNumber: 1, dataLevelLength: 3),
                      dataFIN: false, reference: DataSequenceNumber(70), counters: &counters)
        #expect(m.drain(counters: &counters) == [.data(DataSequenceNumber(70), [1, 2, 3])])
    }

    @Test func mapper_conflictingMapping_isRejectedAndCounted() {
        var m = SubflowDataMapper(checksumsEnabled: false)
        var counters = MPTCPCounters()
        let ref = DataSequenceNumber(100)
        _ = m.receive(mapping: DSSMapping(dataSequenceNumber: 100, subflowSequenceNumber: 1, dataLevelLength: 10),
                      dataFIN: false, reference: ref, counters: &counters)
        #expect(m.receive(mapping: DSSMapping(dataSequenceNumber: 100, subflowSequenceNumber: 1, dataLevelLength: 10),
                          dataFIN: false, reference: ref, counters: &counters) == .duplicate)
        // Consistent extension: fine.
        #expect(m.receive(mapping: DSSMapping(dataSequenceNumber: 105, subflowSequenceNumber: 6, dataLevelLength: 10),
                          dataFIN: false, reference: ref, counters: &counters) == .accepted)
        #expect(m.receive(mapping: DSSMapping(dataSequenceNumber: 900, subflowSequenceNumber: 5, dataLevelLength: 4),
                          dataFIN: false, reference: ref, counters: &counters) == .conflict)
        #expect(counters.mappingsNotMatching == 1)
    }

    @Test func mapper_fourByteDSN_isWidenedNearReference() {
        var m = SubflowDataMapper(checksumsEnabled: false)
        var counters = MPTCPCounters()
        let ref = DataSequenceNumber(0x0000_0001_FFFF_FFF0)
        _ = m.receive(mapping: DSSMapping(dataSequenceNumber: 0x10, isEightBytes: false, subflowSequenceNumber: 1, dataLevelLength: 1),
                      dataFIN: false, reference: ref, counters: &counters)
        #expect(m.receive(subflowSequence: SequenceNumber(1), [7], counters: &counters)
            == [.data(DataSequenceNumber(0x0000_0002_0000_0010), [7])])
    }

    @Test func mapper_checksumGood_yieldsWholeMappingOnlyWhenComplete() {
        var m = SubflowDataMapper(checksumsEnabled: true)
        var counters = MPTCPCounters()
        let chunk = DataChunk(dataSequenceNumber: DataSequenceNumber(1_000_000), bytes: [9, 8, 7, 6])
        _ = m.receive(mapping: chunk.mapping(subflowSequence: 1, checksums: true), dataFIN: false,
                      reference: chunk.dataSequenceNumber, counters: &counters)
        #expect(m.receive(subflowSequence: SequenceNumber(1), [9, 8], counters: &counters).isEmpty)
        #expect(m.receive(subflowSequence: SequenceNumber(3), [7, 6], counters: &counters)
            == [.data(chunk.dataSequenceNumber, [9, 8, 7, 6])])
    }

    @Test func mapper_checksumBad_dropsMappingAndReportsFailure() {
        var m = SubflowDataMapper(checksumsEnabled: true)
        var counters = MPTCPCounters()
        let chunk = DataChunk(dataSequenceNumber: DataSequenceNumber(1_000_000), bytes: [9, 8, 7, 6])
        _ = m.receive(mapping: chunk.mapping(subflowSequence: 1, checksums: true), dataFIN: false,
                      reference: chunk.dataSequenceNumber, counters: &counters)
        // A middlebox rewrote a byte.
        #expect(m.receive(subflowSequence: SequenceNumber(1), [9, 8, 7, 5], counters: &counters)
            == [.checksumFailed(chunk.dataSequenceNumber)])
        #expect(counters.checksumFailures == 1)
        #expect(ChecksumFailurePolicy.respond(toFailureAt: chunk.dataSequenceNumber, otherSubflows: 0)
            == .sendFailAndFallBack(chunk.dataSequenceNumber))
        #expect(ChecksumFailurePolicy.respond(toFailureAt: chunk.dataSequenceNumber, otherSubflows: 1) == .resetSubflow)
    }

    @Test func mapper_checksumsNegotiated_mappingWithoutChecksumIsRejected() {
        var m = SubflowDataMapper(checksumsEnabled: true)
        var counters = MPTCPCounters()
        #expect(m.receive(mapping: DSSMapping(dataSequenceNumber: 1, subflowSequenceNumber: 1, dataLevelLength: 4),
                          dataFIN: false, reference: DataSequenceNumber(1), counters: &counters) == .conflict)
    }

    @Test func mapper_mappingWithDataFIN_yieldsDataThenDataFIN() {
        var m = SubflowDataMapper(checksumsEnabled: true)
        var counters = MPTCPCounters()
        let chunk = DataChunk(dataSequenceNumber: DataSequenceNumber(50), bytes: [1, 2], dataFIN: true)
        _ = m.receive(mapping: chunk.mapping(subflowSequence: 1, checksums: true), dataFIN: true,
                      reference: chunk.dataSequenceNumber, counters: &counters)
        #expect(m.receive(subflowSequence: SequenceNumber(1), [1, 2], counters: &counters)
            == [.data(DataSequenceNumber(50), [1, 2]), .dataFIN(DataSequenceNumber(52))])
    }

    @Test func mapper_bareDataFIN_yieldsDataFINWithoutSubflowBytes() {
        var m = SubflowDataMapper(checksumsEnabled: false)
        var counters = MPTCPCounters()
        _ = m.receive(mapping: DSSMapping(dataSequenceNumber: 77, subflowSequenceNumber: 0, dataLevelLength: 1),
                      dataFIN: true, reference: DataSequenceNumber(77), counters: &counters)
        #expect(m.drain(counters: &counters) == [.dataFIN(DataSequenceNumber(77))])
    }

    @Test func mapper_infiniteMapping_mapsEveryLaterByteOneToOne() {
        var m = SubflowDataMapper(checksumsEnabled: false)
        var counters = MPTCPCounters()
        _ = m.receive(mapping: DSSMapping(dataSequenceNumber: 10, subflowSequenceNumber: 1, dataLevelLength: 2),
                      dataFIN: false, reference: DataSequenceNumber(10), counters: &counters)
        _ = m.receive(subflowSequence: SequenceNumber(1), [1, 2], counters: &counters)
        #expect(m.receive(mapping: DSSMapping(dataSequenceNumber: 12, subflowSequenceNumber: 0, dataLevelLength: 0),
                          dataFIN: false, reference: DataSequenceNumber(12), counters: &counters) == .infinite)
        #expect(m.receive(subflowSequence: SequenceNumber(3), [3, 4, 5], counters: &counters)
            == [.data(DataSequenceNumber(12), [3, 4, 5])])
        #expect(counters.infiniteMappingsReceived == 1)
    }

    @Test func mapper_twoSubflowsIntoOneReassembly_survivesLossOnOne() {
        // Subflow A carries [1, 1000), B carries [1000, 2000); A's bytes come late.
        var ma = SubflowDataMapper(checksumsEnabled: false), mb = SubflowDataMapper(checksumsEnabled: false)
        var r = DataReassembly(remoteIDSN: DataSequenceNumber(0), capacity: 1 << 16)
        var counters = MPTCPCounters()
        let data = (0 ..< 1999).map { UInt8(truncatingIfNeeded: $0 * 7) }
        _ = ma.receive(mapping: DSSMapping(dataSequenceNumber: 1, subflowSequenceNumber: 1, dataLevelLength: 999),
                       dataFIN: false, reference: r.expected, counters: &counters)
        _ = mb.receive(mapping: DSSMapping(dataSequenceNumber: 1000, subflowSequenceNumber: 1, dataLevelLength: 1000),
                       dataFIN: false, reference: r.expected, counters: &counters)
        for case let .data(dsn, bytes) in mb.receive(subflowSequence: SequenceNumber(1), Array(data[999...]), counters: &counters) {
            _ = r.receive(dsn, bytes, counters: &counters)
        }
        #expect(r.readableBytes == 0)
        for case let .data(dsn, bytes) in ma.receive(subflowSequence: SequenceNumber(1), Array(data[..<999]), counters: &counters) {
            _ = r.receive(dsn, bytes, counters: &counters)
        }
        #expect(r.read() == data)
    }
}
