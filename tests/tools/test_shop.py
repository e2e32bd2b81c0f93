"""The emulated shop: catalogue, search quality, cart, date, address, session isolation."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from conversation_engine.core.errors import UserInputError
from conversation_engine.core.settings import project_path
from conversation_engine.tools.catalogue import BUSINESS_TOOLS, CONTROL_TOOLS
from conversation_engine.tools.shop import EmulatedShop

CHICKEN_FILLET_CHILLED = "CB-00000101"
CHICKEN_FILLET_FROZEN = "CB-00000102"
BUTTER = "CB-00000135"
SALMON_FILLET_CHILLED = "CB-00000127"


@pytest.fixture(scope="module")
def shop() -> EmulatedShop:
    return EmulatedShop()


@pytest.fixture
def fresh_shop() -> EmulatedShop:
    return EmulatedShop()


async def find(shop: EmulatedShop, message: str) -> dict[str, Any]:
    return await shop.call("rag_find_products", {"message": message}, "search")


async def first_name(shop: EmulatedShop, message: str) -> str:
    products = (await find(shop, message))["products"]
    assert products, f"nothing found for {message!r}"
    return products[0]["name"]


# ---------------------------------------------------------------- catalogue fixture


def test_catalog_fixture_is_a_complete_wholesale_catalogue() -> None:
    data = json.loads((project_path("fixtures") / "catalog.json").read_text(encoding="utf-8"))
    products = data["products"]
    assert len(products) >= 60
    codes = [product["product_code"] for product in products]
    assert len(set(codes)) == len(codes)
    for product in products:
        assert re.fullmatch(r"CB-\d{8}", product["product_code"])
        assert re.search(r"\b[A-Z]{2}-\d{8}\b", f"[{product['product_code']}]")
        assert product["storage"] in {"chilled", "frozen", "ambient"}
        assert product["unit"] in {"kg", "pack", "piece"}
        assert product["price"] > 0
        numbers = [packaging["type"] for packaging in product["packaging_types"]]
        assert numbers == list(range(1, len(numbers) + 1))
        assert all(packaging["quantity_kg"] > 0 for packaging in product["packaging_types"])


def test_known_codes_used_by_these_tests(shop: EmulatedShop) -> None:
    assert shop.product(CHICKEN_FILLET_CHILLED).name == "Chicken fillet, chilled"  # type: ignore[union-attr]
    assert shop.product(CHICKEN_FILLET_FROZEN).storage == "frozen"  # type: ignore[union-attr]
    assert shop.product(BUTTER).unit == "pack"  # type: ignore[union-attr]
    assert shop.product(SALMON_FILLET_CHILLED).name == "Salmon fillet, chilled"  # type: ignore[union-attr]


def test_tool_schemas_are_business_tools_and_call_transfer(shop: EmulatedShop) -> None:
    schemas = shop.tool_schemas()
    assert set(schemas) == {*BUSINESS_TOOLS, "call_transfer"}
    assert schemas["call_transfer"] == CONTROL_TOOLS["call_transfer"]
    assert schemas["rag_find_products"] == BUSINESS_TOOLS["rag_find_products"]


def test_invalid_catalogue_file_is_a_user_input_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"products": [{"product_code": "nope"}]}', encoding="utf-8")
    with pytest.raises(UserInputError, match=r"broken\.json"):
        EmulatedShop(broken)
    with pytest.raises(UserInputError, match="Cannot read"):
        EmulatedShop(tmp_path / "missing.json")


def test_custom_catalogue_as_a_bare_list(tmp_path: Path) -> None:
    path = tmp_path / "tiny.json"
    product = {
        "product_code": "AB-12345678",
        "name": "Kangaroo steak",
        "category": "Game",
        "brand": "Outback",
        "storage": "frozen",
        "packaging_types": [{"type": 1, "name": "box 5 kg", "quantity_kg": 5}],
        "price": 20,
        "unit": "kg",
    }
    path.write_text(json.dumps([product]), encoding="utf-8")
    tiny = EmulatedShop(path)
    assert [p.product_code for p, _ in tiny.search("kangaroo steaks")] == ["AB-12345678"]


# ---------------------------------------------------------------- search


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("2 boxes of chilled chicken fillet", "Chicken fillet, chilled"),
        ("1 kg of salmon fillet", "Salmon fillet, chilled"),
        ("beef mince", "Beef mince, chilled"),
        ("minced beef", "Beef mince, chilled"),
        ("chiken filet", "Chicken fillet, chilled"),
        ("fillet chicken", "Chicken fillet, chilled"),
        ("salmon", "Salmon fillet, chilled"),
        ("frozen chicken fillet", "Chicken fillet, frozen"),
        ("chicken filets, frozn", "Chicken fillet, frozen"),
        ("chicken wings frozen", "Chicken wings, frozen"),
        ("chicken wing", "Chicken wings, chilled"),
        ("drumsticks", "Chicken drumsticks, chilled"),
        ("whole chicken", "Whole chicken, chilled"),
        ("beef steak", "Beef rump steak, chilled"),
        ("ribeye", "Beef ribeye steak, chilled"),
        ("brisket", "Beef brisket, chilled"),
        ("pork ribs", "Pork ribs, chilled"),
        ("ground pork", "Pork mince, chilled"),
        ("pork belly", "Pork belly, chilled"),
        ("leg of lamb", "Lamb leg, bone-in, chilled"),
        ("lamb chops", "Lamb chops, frozen"),
        ("turkey mince", "Turkey mince, chilled"),
        ("prawns", "Shrimp, peeled, frozen"),
        ("mozarella", "Mozzarella for pizza"),
        ("chedar cheese", "Cheddar cheese, mature"),
        ("yogurt", "Greek yoghurt 10%"),
        ("eggs", "Eggs, large, class A"),
        ("sausages", "Pork sausages, chilled"),
        ("ham", "Cooked ham, sliced"),
        ("potatoes", "Potatoes, washed"),
        ("tomatos", "Tomatoes, vine"),
        ("sunflower oil", "Sunflower oil, refined"),
        ("olive oil", "Extra virgin olive oil"),
        ("pasta", "Spaghetti, durum wheat"),
        ("fresh bread", "White bread loaf, sliced"),
        ("Chicken fillet chilled, box packaging, maker Agro", "Chicken fillet, chilled"),
    ],
)
async def test_search_finds_the_right_product_first(
    shop: EmulatedShop, message: str, expected: str
) -> None:
    assert await first_name(shop, message) == expected


@pytest.mark.parametrize(
    "message", ["kangaroo steaks", "xyz", "", "   ", "chicken nuggets", "42", "please"]
)
async def test_nonsense_finds_nothing(shop: EmulatedShop, message: str) -> None:
    result = await find(shop, message)
    assert result == {
        "query": message,
        "products": [],
        "message": f"No products found for '{message}'.",
    }


async def test_search_result_shape_and_ranking(shop: EmulatedShop) -> None:
    result = await find(shop, "chicken")
    assert result["query"] == "chicken"
    products = result["products"]
    assert 1 <= len(products) <= 5
    for product in products:
        assert set(product) == {
            "product_code",
            "name",
            "storage",
            "packaging_types",
            "price",
            "unit",
            "score",
        }
        assert "chicken" in product["name"].lower()
        assert 0 < product["score"] <= 100
    scores = [product["score"] for product in products]
    assert scores == sorted(scores, reverse=True)
    assert products[0]["packaging_types"][0] == {"type": 1, "name": "box 10 kg", "quantity_kg": 10}


async def test_storage_preference_ranks_the_other_storage_lower(shop: EmulatedShop) -> None:
    chilled = (await find(shop, "chilled chicken fillet"))["products"]
    frozen = (await find(shop, "frozen chicken fillet"))["products"]
    assert chilled[0]["product_code"] == CHICKEN_FILLET_CHILLED
    assert frozen[0]["product_code"] == CHICKEN_FILLET_FROZEN
    codes = [product["product_code"] for product in frozen]
    assert CHICKEN_FILLET_CHILLED in codes  # preferred, not filtered
    assert codes.index(CHICKEN_FILLET_CHILLED) > codes.index(CHICKEN_FILLET_FROZEN)


async def test_typo_query_does_not_drag_in_unrelated_chicken_cuts(shop: EmulatedShop) -> None:
    products = (await find(shop, "chiken filet"))["products"]
    assert {product["product_code"] for product in products[:2]} == {
        CHICKEN_FILLET_CHILLED,
        CHICKEN_FILLET_FROZEN,
    }
    assert not any("wing" in product["name"].lower() for product in products)


async def test_a_product_code_in_the_request_finds_that_product(shop: EmulatedShop) -> None:
    products = (await find(shop, f"the one with code {BUTTER.lower()}"))["products"]
    assert products[0]["product_code"] == BUTTER


async def test_search_is_deterministic(shop: EmulatedShop) -> None:
    other = EmulatedShop()
    for message in ("chicken", "oil", "chiken filet", "frozen fish"):
        assert await find(shop, message) == await find(other, message)


async def test_missing_message_is_a_problem_result(shop: EmulatedShop) -> None:
    result = await shop.call("rag_find_products", {}, "s")
    assert result == {"error": "Invalid arguments for rag_find_products: message: Field required."}


# ---------------------------------------------------------------- cart


async def test_add_get_remove_with_totals(fresh_shop: EmulatedShop) -> None:
    session = "cart-1"
    added = await fresh_shop.call(
        "add_to_cart",
        {
            "items": [
                {"product_code": CHICKEN_FILLET_CHILLED, "quantity": 2, "packaging_type": 1},
                {"product_code": BUTTER, "quantity": 3, "packaging_type": 2},
            ],
            "execution_message": "Adding that now.",
        },
        session,
    )
    assert added["status"] == "added"
    assert added["items_in_cart"] == 2
    assert added["total"] == 151.8  # 2 x 10 kg x 6.90 + 3 x 1 block x 4.60
    assert [line["product_code"] for line in added["cart"]] == [CHICKEN_FILLET_CHILLED, BUTTER]
    assert [line["line_total"] for line in added["added"]] == [138.0, 13.8]

    cart = await fresh_shop.call("get_cart", {}, session)
    assert cart == {
        "items": [
            {
                "product_code": CHICKEN_FILLET_CHILLED,
                "name": "Chicken fillet, chilled",
                "quantity": 2,
                "packaging_type": 1,
                "packaging": "box 10 kg",
                "unit": "kg",
                "unit_price": 6.9,
                "package_price": 69.0,
                "line_total": 138.0,
            },
            {
                "product_code": BUTTER,
                "name": "Butter 82%, unsalted",
                "quantity": 3,
                "packaging_type": 2,
                "packaging": "block 500 g",
                "unit": "pack",
                "unit_price": 4.6,
                "package_price": 4.6,
                "line_total": 13.8,
            },
        ],
        "total": 151.8,
        "delivery_date": None,
        "location_id": None,
    }

    # The same product and packaging again adds to the line.
    again = await fresh_shop.call(
        "add_to_cart", {"items": [{"product_code": CHICKEN_FILLET_CHILLED, "quantity": 1}]}, session
    )
    assert again["items_in_cart"] == 2
    assert fresh_shop.cart(session)[0].quantity == 3
    assert fresh_shop.cart(session)[0].line_total == 207.0

    removed = await fresh_shop.call(
        "remove_from_cart", {"items": [CHICKEN_FILLET_CHILLED, "CB-00000999"]}, session
    )
    assert removed == {
        "status": "removed",
        "removed": [CHICKEN_FILLET_CHILLED],
        "not_in_cart": ["CB-00000999"],
        "cart": [cart["items"][1]],
        "items_in_cart": 1,
        "total": 13.8,
    }
    assert [line.product_code for line in fresh_shop.cart(session)] == [BUTTER]


async def test_empty_cart(fresh_shop: EmulatedShop) -> None:
    assert await fresh_shop.call("get_cart", {}, "nobody") == {
        "items": [],
        "total": 0.0,
        "delivery_date": None,
        "location_id": None,
        "message": "The cart is empty.",
    }


async def test_packaging_type_defaults_to_1_and_codes_are_case_insensitive(
    fresh_shop: EmulatedShop,
) -> None:
    await fresh_shop.call(
        "add_to_cart",
        {"items": [{"product_code": SALMON_FILLET_CHILLED.lower(), "quantity": 1.5}]},
        "s",
    )
    (line,) = fresh_shop.cart("s")
    assert (line.product_code, line.packaging_type, line.quantity) == (
        SALMON_FILLET_CHILLED,
        1,
        1.5,
    )
    assert line.line_total == 161.25  # 1.5 boxes x 5 kg x 21.50


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (
            [{"product_code": "CB-999", "quantity": 1}],
            "Unknown product code 'CB-999'. Use a code returned by rag_find_products.",
        ),
        (
            [{"product_code": CHICKEN_FILLET_CHILLED, "quantity": 0}],
            f"Quantity for '{CHICKEN_FILLET_CHILLED}' must be greater than 0, not 0.",
        ),
        (
            [{"product_code": CHICKEN_FILLET_CHILLED, "quantity": -2}],
            f"Quantity for '{CHICKEN_FILLET_CHILLED}' must be greater than 0, not -2.",
        ),
        (
            [{"product_code": CHICKEN_FILLET_CHILLED, "quantity": 1, "packaging_type": 3}],
            f"Packaging type 3 does not exist for '{CHICKEN_FILLET_CHILLED}'; "
            "available: 1 (box 10 kg), 2 (tray 1 kg).",
        ),
        ([], "No items given; pass at least one {product_code, quantity}."),
    ],
)
async def test_add_to_cart_problems_are_results_and_add_nothing(
    fresh_shop: EmulatedShop, items: list[dict[str, Any]], message: str
) -> None:
    # A valid item next to the bad one is not added either: all or nothing.
    good = {"product_code": BUTTER, "quantity": 1}
    result = await fresh_shop.call("add_to_cart", {"items": [good, *items]}, "s")
    if items:
        assert result == {"error": f"{message} Nothing was added to the cart."}
    else:
        assert result["status"] == "added"
        result = await fresh_shop.call("add_to_cart", {"items": []}, "t")
        assert result == {"error": message}
        return
    assert fresh_shop.cart("s") == []


async def test_add_to_cart_type_problems(fresh_shop: EmulatedShop) -> None:
    result = await fresh_shop.call(
        "add_to_cart", {"items": [{"product_code": BUTTER, "quantity": "lots"}]}, "s"
    )
    assert result["error"].startswith("Invalid arguments for add_to_cart: items.0.quantity:")
    assert await fresh_shop.call("add_to_cart", {}, "s") == {
        "error": "Invalid arguments for add_to_cart: items: Field required."
    }


async def test_remove_problems(fresh_shop: EmulatedShop) -> None:
    assert await fresh_shop.call("remove_from_cart", {"items": ["CB-00000101"]}, "s") == {
        "error": "None of these products is in the cart: CB-00000101."
    }
    assert await fresh_shop.call("remove_from_cart", {"items": []}, "s") == {
        "error": "No product codes given to remove."
    }


async def test_remove_accepts_item_objects(fresh_shop: EmulatedShop) -> None:
    await fresh_shop.call("add_to_cart", {"items": [{"product_code": BUTTER, "quantity": 1}]}, "s")
    result = await fresh_shop.call(
        "remove_from_cart", {"items": [{"product_code": BUTTER, "quantity": 1}]}, "s"
    )
    assert result["removed"] == [BUTTER]


# ---------------------------------------------------------------- date, address, transfer


async def test_change_delivery_date(fresh_shop: EmulatedShop) -> None:
    result = await fresh_shop.call("change_delivery_date", {"delivery_date": "2024-02-29"}, "s")
    assert result == {"status": "delivery_date_changed", "delivery_date": "2024-02-29"}
    assert fresh_shop.session_state("s").delivery_date == "2024-02-29"


@pytest.mark.parametrize(
    "value", ["2024-02-30", "tomorrow", "2023-02-29", "20240301", "01.03.2024"]
)
async def test_invalid_delivery_dates(fresh_shop: EmulatedShop, value: str) -> None:
    result = await fresh_shop.call("change_delivery_date", {"delivery_date": value}, "s")
    assert result == {
        "error": f"Invalid delivery date '{value}'; use a real calendar date as YYYY-MM-DD."
    }
    assert fresh_shop.session_state("s").delivery_date is None


@pytest.mark.parametrize(("value", "expected"), [(1, 1), (5, 5), ("3", 3), (2.0, 2)])
async def test_set_current_location(fresh_shop: EmulatedShop, value: Any, expected: int) -> None:
    result = await fresh_shop.call("set_current_location", {"location_id": value}, "s")
    assert result == {"status": "location_set", "location_id": expected}
    assert fresh_shop.session_state("s").location_id == expected


@pytest.mark.parametrize("value", [0, 6, -1, "abc", True, 2.5, None])
async def test_invalid_location(fresh_shop: EmulatedShop, value: Any) -> None:
    result = await fresh_shop.call("set_current_location", {"location_id": value}, "s")
    assert result["error"].startswith(f"Invalid location_id {value!r}; choose a number from 1 to 5")
    assert fresh_shop.session_state("s").location_id is None


async def test_call_transfer_and_unknown_tool(shop: EmulatedShop) -> None:
    assert await shop.call("call_transfer", {"reason": "wants a manager"}, "s") == {
        "status": "transfer_requested",
        "reason": "wants a manager",
        "message": "The customer will be transferred to a human operator.",
    }
    assert await shop.call("confirm_order", {}, "s") == {"error": "Unknown tool 'confirm_order'"}


# ---------------------------------------------------------------- sessions


async def test_two_hundred_concurrent_sessions_stay_isolated(fresh_shop: EmulatedShop) -> None:
    codes = [product.product_code for product in fresh_shop.products]

    def plan(index: int) -> list[tuple[str, int]]:
        return [(codes[(index + k) % len(codes)], index % 7 + k + 1) for k in range(3)]

    async def session(index: int) -> None:
        for code, quantity in plan(index):
            result = await fresh_shop.call(
                "add_to_cart",
                {"items": [{"product_code": code, "quantity": quantity}]},
                f"s{index}",
            )
            assert result["status"] == "added"
            await asyncio.sleep(0)  # interleave the sessions
        await fresh_shop.call("set_current_location", {"location_id": index % 5 + 1}, f"s{index}")

    await asyncio.gather(*(session(index) for index in range(200)))
    for index in range(200):
        state = fresh_shop.session_state(f"s{index}")
        assert [(line.product_code, line.quantity) for line in state.cart] == plan(index)
        assert state.location_id == index % 5 + 1


def test_sessions_are_safe_across_threads(fresh_shop: EmulatedShop) -> None:
    def worker(index: int) -> None:
        for _ in range(20):
            asyncio.run(
                fresh_shop.call(
                    "add_to_cart", {"items": [{"product_code": BUTTER, "quantity": 1}]}, "shared"
                )
            )

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert fresh_shop.cart("shared")[0].quantity == 160


async def test_reset(fresh_shop: EmulatedShop) -> None:
    for session in ("a", "b"):
        await fresh_shop.call(
            "add_to_cart", {"items": [{"product_code": BUTTER, "quantity": 1}]}, session
        )
    fresh_shop.reset("a")
    assert fresh_shop.cart("a") == []
    assert len(fresh_shop.cart("b")) == 1
    fresh_shop.reset()
    assert fresh_shop.cart("b") == []
    assert fresh_shop.session_state("b").total == 0.0
