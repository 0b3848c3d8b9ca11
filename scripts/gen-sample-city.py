#!/usr/bin/env python3
"""Generates data/cities/sample-city.csv: a made-up but realistic community list for Hohhot.

Four urban districts, their street offices (街道), community committees (社区) and about 200
residential communities (小区) with WGS-84 coordinates clustered per street. Written the way a
city exports it from Excel: UTF-8 with a BOM, CRLF, Chinese headers, an extra 备注 column.

Names, addresses, property companies and household counts are invented; street office names
follow Hohhot's real ones. Deterministic (fixed seed): rerunning gives the same file.

    python3 scripts/gen-sample-city.py
"""

import csv
import pathlib
import random

SEED = 20260101
OUT = pathlib.Path(__file__).resolve().parent.parent / "data" / "cities" / "sample-city.csv"

# district -> (division code, (lat_min, lat_max, lon_min, lon_max) in WGS-84, streets, roads)
DISTRICTS = {
    "新城区": (
        "150102",
        (40.832, 40.874, 111.668, 111.760),
        ["海拉尔东路街道", "锡林北路街道", "中山东路街道", "东街街道", "西街街道",
         "迎新路街道", "东风路街道", "成吉思汗大街街道"],
        ["新华大街", "兴安北路", "锡林北路", "海拉尔东路", "成吉思汗大街", "东影北路",
         "北垣东街", "中山东路", "丁香路", "迎宾北路"],
    ),
    "回民区": (
        "150103",
        (40.818, 40.868, 111.585, 111.662),
        ["环河街街道", "通道街街道", "新华西路街道", "中山西路街道", "光明路街道",
         "海拉尔西路街道", "钢铁路街道"],
        ["中山西路", "新华大街", "通道北街", "海拉尔西路", "巴彦淖尔北路", "钢铁路",
         "光明路", "西二环路", "环河街"],
    ),
    "玉泉区": (
        "150104",
        (40.782, 40.816, 111.602, 111.688),
        ["兴隆巷街道", "长和廊街道", "石东路街道", "大南街街道", "小召前街街道",
         "西菜园街道", "鄂尔多斯路街道", "昭君路街道"],
        ["大南街", "石羊桥路", "南二环路", "鄂尔多斯大街", "昭君路", "锡林南路",
         "西菜园路", "长和廊", "兴隆巷"],
    ),
    "赛罕区": (
        "150105",
        (40.784, 40.832, 111.692, 111.778),
        ["人民路街道", "大学西路街道", "大学东路街道", "乌兰察布东路街道", "昭乌达路街道",
         "中专路街道", "敕勒川路街道", "巴彦街道"],
        ["大学东街", "大学西街", "昭乌达路", "乌兰察布东街", "人民路", "中专路",
         "敕勒川大街", "鄂尔多斯大街", "腾飞路", "南二环路"],
    ),
}

COMMITTEE_WORDS = [
    "团结", "友谊", "和平", "新华", "光明", "民族", "振华", "富强", "幸福", "建设", "丁香",
    "石羊桥", "海东", "锡林", "青城", "如意", "金桥", "兴安", "满都海", "塞上", "曙光", "长乐",
    "文化", "学府", "滨河", "公园", "北垣", "南茶坊", "大召", "五塔", "宽巷", "通顺", "县府",
    "西顺城", "车站", "东瓦窑", "万通", "昭君", "东站", "苏虎", "巴彦", "桃花", "西龙王庙",
    "工农兵", "东影", "新城", "鼓楼", "金海", "绿地", "温馨", "后桥", "钢铁", "祥和", "成吉思汗",
    "展东", "腾飞", "体育", "水岸", "碧水", "新时代", "天骄", "口岸", "北苑", "东河",
    "西河沿", "庆凯", "利民", "富民", "安康", "长青", "松园", "柳岸", "榆林", "紫荆", "春晖",
    "朝阳", "向阳", "晨光", "红旗", "胜利", "跃进", "东门", "西门", "南门", "北门", "兴隆",
    "长和", "石东", "菜园", "小召", "太平", "永安", "康居", "乌素图", "锦华", "恒昌", "瑞和",
    "丰泽", "润宇", "嘉茂", "海亮", "康馨", "民乐", "德胜",
]

NAME_PREFIXES = [
    "阳光", "锦绣", "金桥", "如意", "丁香", "青城", "鑫泰", "嘉和", "春华", "秋实", "泰和",
    "瑞祥", "御景", "和美", "祥和", "塞外", "草原", "蒙苑", "盛世", "名都", "怡景", "惠民",
    "安泰", "康乐", "万锦", "金宇", "颐和", "锡林", "兴安", "滨河", "北辰", "东方", "天骄",
    "水岸", "凯旋", "紫薇", "玉兰", "丽景", "博雅", "学苑", "书香", "翰林", "天誉", "景苑",
    "富丽", "银河", "明珠", "宏源", "华泰", "恒信", "佳和", "新世纪", "巨海", "昭君", "敕勒川",
]
NAME_SUFFIXES = [
    "小区", "花园", "家园", "嘉园", "苑", "新村", "公寓", "雅居", "名邸", "华庭", "佳苑",
    "府", "湾", "城", "里",
]
# Old work-unit compounds (单位家属院): often no property company.
WORK_UNITS = [
    "铁路局", "电业局", "毛纺厂", "糖厂", "第二毛纺厂", "钢铁厂", "自来水公司", "邮电局",
    "卷烟厂", "热电厂", "第一医院", "师范学院", "农机厂", "木材公司", "交通局", "粮食局",
    "棉纺厂", "制药厂", "皮革厂", "水泥厂", "地质队", "汽车修理厂",
]
PROPERTY_COMPANIES = [
    "呼和浩特市{}物业服务有限公司",
    "内蒙古{}物业管理有限责任公司",
    "呼和浩特{}物业有限公司",
]
COMPANY_WORDS = [
    "鑫泰", "嘉和", "恒信", "祥和", "万锦", "金宇", "安泰", "佳和", "华泰", "宏源", "盛世",
    "草原明珠", "青城", "塞上", "蒙苑", "瑞祥", "北辰", "天骄", "德润", "惠众",
]
NO_COMPANY = ["无物业（社区代管）", "单位自管", "无物业（居民自治）"]

TOTAL = 200


def main() -> None:
    rng = random.Random(SEED)
    companies = [rng.choice(PROPERTY_COMPANIES).format(w) for w in COMPANY_WORDS]
    committee_words = COMMITTEE_WORDS[:]
    rng.shuffle(committee_words)

    streets = []  # (district, code, street, committees, centre, box, roads)
    for district, (code, box, street_names, roads) in DISTRICTS.items():
        lat0, lat1, lon0, lon1 = box
        for street in street_names:
            committees = [committee_words.pop() + "社区" for _ in range(rng.randint(2, 3))]
            # Keep street centres away from the district edge so clusters stay inside it.
            centre = (rng.uniform(lat0 + 0.006, lat1 - 0.006), rng.uniform(lon0 + 0.008, lon1 - 0.008))
            streets.append((district, code, street, committees, centre, box, roads))

    rows = []
    used_names = set()
    serial = {d: 0 for d in DISTRICTS}
    for i in range(TOTAL):
        district, code, street, committees, (clat, clon), box, roads = streets[i % len(streets)]
        old = rng.random() < 0.22
        while True:
            if old:
                name = rng.choice(WORK_UNITS) + rng.choice(["家属院", "宿舍", "生活区"])
            else:
                name = rng.choice(NAME_PREFIXES) + rng.choice(NAME_SUFFIXES)
                if rng.random() < 0.15:
                    name += rng.choice(["一期", "二期", "三期", "东区", "西区"])
            if (district, name) not in used_names:
                used_names.add((district, name))
                break
        serial[district] += 1
        lat0, lat1, lon0, lon1 = box
        lat = min(max(rng.gauss(clat, 0.0035), lat0), lat1)
        lon = min(max(rng.gauss(clon, 0.0045), lon0), lon1)
        if old:
            households = rng.randint(48, 420)
            manager = rng.choice(NO_COMPANY) if rng.random() < 0.7 else rng.choice(companies)
            note = rng.choice(["老旧小区", "老旧小区，2021年改造", "老旧小区", ""])
        else:
            households = rng.randint(260, 3200)
            manager = rng.choice(companies)
            note = rng.choice(["", "", "", "", "撤桶并点试点", "定时定点投放", "新建小区"])
        # Bigger compounds need a wider geofence; 100-300 m in steps of 10.
        geofence = min(300, max(100, 100 + (households // 20) // 10 * 10 + rng.choice([0, 10, 20, 30])))
        address = f"{district}{rng.choice(roads)}{rng.randint(1, 399)}号"
        rows.append([
            f"{code}-{serial[district]:04d}",
            name,
            district,
            street,
            rng.choice(committees),
            address,
            f"{lat:.6f}",
            f"{lon:.6f}",
            "WGS84",
            str(geofence),
            manager,
            str(households),
            note,
        ])

    rows.sort(key=lambda r: r[0])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow(["小区编号", "小区名称", "区", "街道", "社区", "地址", "纬度", "经度",
                    "坐标系", "围栏半径(米)", "物业公司", "户数", "备注"])
        w.writerows(rows)


if __name__ == "__main__":
    main()
