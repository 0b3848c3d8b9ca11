package org.fenlei

import org.fenlei.core.ClosureEvidence
import org.fenlei.core.InspectionKind
import org.fenlei.core.NewInspection
import org.fenlei.core.NewRectification
import org.fenlei.core.RectificationStatus
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import org.junit.jupiter.api.io.TempDir
import java.io.File

/** Rectification tasks as an Android app sees them: records in, typed errors, the loop's rules. */
class FenleiRectificationsTest {
    @TempDir
    lateinit var dir: File

    @Test
    fun `open a task, add its evidence, submit it and follow it up`() {
        FenleiStore.open(File(dir, "fenlei.sqlite").absolutePath).use { store ->
            store.importStandard(sampleStandardToml())
            store.importCommunitiesCsv(sampleCityCsv())
            val inspection = store.createInspection(
                NewInspection("150102-0001", "hohhot-residential", "2026.1", InspectionKind.DAILY_PATROL),
                "inspector-7",
            )
            FenleiRectifications(store).use { tasks ->
                val id = tasks.open(
                    NewRectification(
                        communityId = "150102-0001",
                        inspectionId = inspection,
                        itemCode = "C01",
                        itemTitle = "收集容器满溢",
                        responsible = "物业",
                        deadlineDays = 3u,
                        requiredEvidence = listOf("photo_after"),
                    ),
                    "inspector-7",
                )
                assertEquals(RectificationStatus.OPEN, tasks.get(id).status)
                assertThrows<FenleiException.InvalidInput> {
                    tasks.setStatus(id, RectificationStatus.SUBMITTED, "inspector-7")
                }
                assertThrows<FenleiException.InvalidState> {
                    tasks.setStatus(id, RectificationStatus.CLOSED, "sup")
                }
                val followUp = store.createInspection(
                    NewInspection("150102-0001", "hohhot-residential", "2026.1", InspectionKind.FOLLOW_UP),
                    "inspector-7",
                )
                val status = tasks.recordFollowUp(id, followUp, true, listOf("e".repeat(64)), "inspector-7")
                assertEquals(RectificationStatus.SUBMITTED, status)
                tasks.addClosureEvidence(id, ClosureEvidence(kind = "report", text = "销号报告", by = "inspector-7"))
                assertEquals(2, tasks.get(id).closureEvidence.size)
                assertEquals(listOf(id), tasks.ofCommunity("150102-0001").map { it.id })
                assertEquals(1, tasks.list().size)
            }
        }
    }
}
