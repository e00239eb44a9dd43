#!/usr/bin/env python3
"""Writes the 2023 先发带后发 pairing examples (see README.md).

    python3 examples/pairing_2023/make_ledgers.py

writes examples/pairing_2023/ledger.json (the round as reported: 13 cities,
35 helper districts, 56 recipients, 1,554 cadres) and
examples/pairing_2023_without_qingchuan/ledger.json (the same round after the
what-if “青川县 loses its pairing”), and the same two files as the data of the
full-size policy tests in policies/tests/data/ (bundled with the policies).
Deterministic: the committed files are its output.
"""
import json
import os

AB, GZ, LS = "阿坝藏族羌族自治州", "甘孜藏族自治州", "凉山彝族自治州"

# The 56 recipients: code, name, city. Named by the seed notice (四川日报,
# 2023-07-27): 青川县, 盐源县, 若尔盖县, 石渠县. The other 52 are real county
# codes of Sichuan's former deep-poverty and underdeveloped areas, chosen for
# illustration: the notice does not list them.
RECIPIENTS = [
    ("510822", "青川县", "广元市"),
    ("513423", "盐源县", LS), ("513422", "木里藏族自治县", LS), ("513428", "普格县", LS),
    ("513429", "布拖县", LS), ("513430", "金阳县", LS), ("513431", "昭觉县", LS),
    ("513432", "喜德县", LS), ("513434", "越西县", LS), ("513435", "甘洛县", LS),
    ("513436", "美姑县", LS), ("513437", "雷波县", LS),
    ("513301", "康定市", GZ), ("513322", "泸定县", GZ), ("513323", "丹巴县", GZ),
    ("513324", "九龙县", GZ), ("513325", "雅江县", GZ), ("513326", "道孚县", GZ),
    ("513327", "炉霍县", GZ), ("513328", "甘孜县", GZ), ("513329", "新龙县", GZ),
    ("513330", "德格县", GZ), ("513331", "白玉县", GZ), ("513332", "石渠县", GZ),
    ("513333", "色达县", GZ), ("513334", "理塘县", GZ), ("513335", "巴塘县", GZ),
    ("513336", "乡城县", GZ), ("513337", "稻城县", GZ), ("513338", "得荣县", GZ),
    ("513201", "马尔康市", AB), ("513221", "汶川县", AB), ("513222", "理县", AB),
    ("513223", "茂县", AB), ("513224", "松潘县", AB), ("513225", "九寨沟县", AB),
    ("513226", "金川县", AB), ("513227", "小金县", AB), ("513228", "黑水县", AB),
    ("513230", "壤塘县", AB), ("513231", "阿坝县", AB), ("513232", "若尔盖县", AB),
    ("513233", "红原县", AB),
    ("511113", "金口河区", "乐山市"), ("511132", "峨边彝族自治县", "乐山市"),
    ("511133", "马边彝族自治县", "乐山市"), ("511129", "沐川县", "乐山市"),
    ("511529", "屏山县", "宜宾市"), ("510524", "叙永县", "泸州市"), ("510525", "古蔺县", "泸州市"),
    ("510726", "北川羌族自治县", "绵阳市"), ("510727", "平武县", "绵阳市"),
    ("511921", "通江县", "巴中市"), ("511922", "南江县", "巴中市"),
    ("511781", "万源市", "达州市"), ("510821", "旺苍县", "广元市"),
]

# The 35 helper districts and counties of 13 cities, each with its recipients.
# The pairs the notice names: 泸州市江阳区→盐源县, 德阳市→若尔盖县 (here
# 旌阳区), 绵阳市→青川县 (here 涪城区), 成都市金牛区→石渠县. The others are
# illustrative. Helper names are distinct across cities on purpose: the
# catalog counts helper districts by name (two cities' 市中区 would count once).
HELPERS = [
    ("成都市", "锦江区", ["513301", "513322"]), ("成都市", "青羊区", ["513323", "513324"]),
    ("成都市", "金牛区", ["513332", "513330"]), ("成都市", "武侯区", ["513325", "513326"]),
    ("成都市", "成华区", ["513327", "513328"]), ("成都市", "龙泉驿区", ["513329", "513331"]),
    ("成都市", "青白江区", ["513333", "513334"]), ("成都市", "新都区", ["513335", "513336"]),
    ("成都市", "温江区", ["513337", "513338"]), ("成都市", "双流区", ["513422", "513428"]),
    ("成都市", "郫都区", ["513429", "513430"]), ("成都市", "新津区", ["513431"]),
    ("德阳市", "旌阳区", ["513232", "513233"]), ("德阳市", "广汉市", ["513201", "513221"]),
    ("德阳市", "什邡市", ["513222"]),
    ("绵阳市", "涪城区", ["510822", "510727"]), ("绵阳市", "游仙区", ["513223", "513224"]),
    ("绵阳市", "安州区", ["510726"]),
    ("泸州市", "江阳区", ["513423"]), ("泸州市", "龙马潭区", ["510524", "510525"]),
    ("宜宾市", "翠屏区", ["511529", "513437"]), ("宜宾市", "叙州区", ["513436"]),
    ("自贡市", "自流井区", ["513432"]), ("自贡市", "大安区", ["513434"]),
    ("攀枝花市", "东区", ["513435"]), ("攀枝花市", "西区", ["513225"]),
    ("乐山市", "市中区", ["511113", "511132"]), ("乐山市", "五通桥区", ["511133", "511129"]),
    ("眉山市", "东坡区", ["513226"]), ("眉山市", "彭山区", ["513227"]),
    ("遂宁市", "船山区", ["513228"]), ("遂宁市", "安居区", ["513230"]),
    ("内江市", "东兴区", ["513231"]), ("南充市", "顺庆区", ["511921", "511922"]),
    ("资阳市", "雁江区", ["511781", "510821"]),
]

# Not recipients: counted by no rule of the round (not underdeveloped).
OTHER_COUNTIES = [
    ("510104", "锦江区", "成都市"), ("510106", "金牛区", "成都市"), ("510502", "江阳区", "泸州市"),
    ("510703", "涪城区", "绵阳市"), ("510603", "旌阳区", "德阳市"),
]

CADRES_SENT = 1554


def cadres_per_pairing(n):
    """n figures between 18 and 38, summing to CADRES_SENT."""
    figures = [18 + (i * 11) % 21 for i in range(n)]
    diff = CADRES_SENT - sum(figures)
    i = 0
    while diff:
        step = 1 if diff > 0 else -1
        if 18 <= figures[i % n] + step <= 38:
            figures[i % n] += step
            diff -= step
        i += 1
    return figures


def ledger(drop_qingchuan=False):
    pairs = [(city, county, r) for city, county, rs in HELPERS for r in rs]
    figures = cadres_per_pairing(len(pairs))
    counties = [
        {"code": code, "name": name, "city": city,
         # Planted in both files: the county table was not updated for 万源市,
         # so its pairing breaks pairing.recipient_underdeveloped.
         "underdeveloped": code != "511781",
         "poverty_county": True, "exit_year": 2019 if city in (AB, GZ, LS) else 2018}
        for code, name, city in RECIPIENTS
    ] + [
        {"code": code, "name": name, "city": city, "underdeveloped": False,
         "poverty_county": False, "exit_year": None}
        for code, name, city in OTHER_COUNTIES
    ]
    pairings = []
    for (city, county, recipient), cadres in zip(pairs, figures):
        if drop_qingchuan and recipient == "510822":
            continue
        pairings.append({"round": 2023, "helper_city": city, "helper_county": county,
                         "recipient": recipient, "cadres": cadres,
                         "start": "2023-07-12", "end": None})
    # The previous round's pairing of 锦江区 with 黑水县 (not counted in 2023).
    pairings.append({"round": 2021, "helper_city": "成都市", "helper_county": "锦江区",
                     "recipient": "513228", "cadres": 25, "start": "2021-03-01",
                     "end": "2023-06-30"})
    return {"counties": counties, "pairings": pairings}


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("{\n")
        for idx, (name, records) in enumerate(data.items()):
            f.write(f' "{name}": [\n')
            lines = [json.dumps(r, ensure_ascii=False) for r in records]
            f.write(",\n".join("  " + line for line in lines))
            f.write("\n ]" + (",\n" if idx + 1 < len(data) else "\n"))
        f.write("}\n")


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    assert len(RECIPIENTS) == 56 and len({c for c, _, _ in RECIPIENTS}) == 56
    assert len(HELPERS) == 35 and len({county for _, county, _ in HELPERS}) == 35
    assert len({city for city, _, _ in HELPERS}) == 13
    assigned = sorted(r for _, _, rs in HELPERS for r in rs)
    assert assigned == sorted(c for c, _, _ in RECIPIENTS), "each recipient paired once"
    root = os.path.join(here, "..", "..")
    for path in [os.path.join(here, "ledger.json"),
                 os.path.join(root, "policies", "tests", "data", "pairing_2023.json")]:
        write(path, ledger())
    for path in [os.path.join(here, "..", "pairing_2023_without_qingchuan", "ledger.json"),
                 os.path.join(root, "policies", "tests", "data",
                              "pairing_2023_without_qingchuan.json")]:
        write(path, ledger(drop_qingchuan=True))
